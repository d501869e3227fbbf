import MingusCore
import MingusGateway

await MingusProcess.run { try await GatewayServer.run() }
