import MingusGateway

try await GatewayServer.run()
