import MingusCore
import MingusGateway

try await MingusProcess.run { try await GatewayServer.run() }
