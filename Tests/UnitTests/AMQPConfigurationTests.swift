import MingusAMQP
import Testing

@Suite("AMQP URL parsing")
struct AMQPConfigurationTests {
    @Test("the default URL means the default vhost on the local broker")
    func defaultURL() throws {
        let configuration = try AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:5673/")
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 5673)
        #expect(configuration.user == "guest")
        #expect(configuration.password == "guest")
        #expect(configuration.virtualHost == "/")
        #expect(configuration.tls == nil)
        #expect(configuration.heartbeat == .seconds(30))
    }

    @Test("vhost, percent-encoding, heartbeat and timeout")
    func fullURL() throws {
        let configuration = try AMQPConfiguration(url: "amqp://us%40er:p%3Ass@broker.example:5000/prod%2Feu?heartbeat=10&connection_timeout=2500")
        #expect(configuration.user == "us@er")
        #expect(configuration.password == "p:ss")
        #expect(configuration.virtualHost == "prod/eu")
        #expect(configuration.heartbeat == .seconds(10))
        #expect(configuration.connectTimeout == .milliseconds(2500))
        #expect(!configuration.redactedDescription.contains("p:ss"))
    }

    @Test("amqps turns on TLS with verification and reads the certificate files")
    func tls() throws {
        let configuration = try AMQPConfiguration(url: "amqps://u:p@broker.example/?cacertfile=/etc/ca.pem&certfile=/c.pem&keyfile=/k.pem")
        let tls = try #require(configuration.tls)
        #expect(configuration.port == 5671)
        #expect(tls.verifyPeer && tls.verifyHostname)
        #expect(tls.caCertificatePath == "/etc/ca.pem")
        #expect(tls.certificatePath == "/c.pem")
        #expect(tls.keyPath == "/k.pem")
        let unverified = try AMQPConfiguration(url: "amqps://u:p@broker.example/?verify=verify_none")
        #expect(unverified.tls?.verifyPeer == false)
    }

    @Test("bad URLs are refused with one line naming the problem", arguments: [
        ("http://host/", "scheme"),
        ("amqp:///", "no host"),
        ("amqp://h/?heartbeat=soon", "heartbeat"),
        ("amqp://h/?cacertfile=/x", "amqps"),
        ("amqp://h/?colour=blue", "unknown query parameter"),
        ("amqps://h/?certfile=/c.pem", "certfile and keyfile"),
        ("not a url ://", "cannot parse"),
    ])
    func badURLs(url: String, reason: String) {
        let error = #expect(throws: AMQPError.self) { try AMQPConfiguration(url: url) }
        #expect(error?.kind == .invalidURL)
        #expect(error?.description.contains(reason) == true, "\(error?.description ?? "")")
        #expect(error?.description.contains("\n") == false)
    }

    @Test("a cluster's brokers: a list of URLs, or one URL with several hosts sharing its credentials, vhost and options")
    func brokerLists() throws {
        let urls = try AMQPConfiguration.brokers("amqp://a:b@n1:5672/,amqps://c:d@n2:5671/v")
        #expect(urls.map(\.host) == ["n1", "n2"])
        #expect(urls.map(\.user) == ["a", "c"])
        #expect(urls.map(\.virtualHost) == ["/", "v"])
        #expect(urls[1].tls != nil)

        let hosts = try AMQPConfiguration.brokers("amqp://u%40x:p@127.0.0.1:5680,127.0.0.1:5681,node3/prod?heartbeat=10", connectionName: "w")
        #expect(hosts.map(\.host) == ["127.0.0.1", "127.0.0.1", "node3"])
        #expect(hosts.map(\.port) == [5680, 5681, 5672])
        #expect(hosts.allSatisfy { $0.user == "u@x" && $0.password == "p" && $0.virtualHost == "prod" && $0.heartbeat == .seconds(10) && $0.connectionName == "w" })

        let single = try AMQPConfiguration.brokers("amqp://guest:guest@127.0.0.1:5673/")
        #expect(single.count == 1 && single[0].port == 5673)

        for bad in ["amqp://h1,,h2/", "amqp://a@h1/,h2", "amqp://h1,http://h2/", "amqp://h1:x,h2/"] {
            let error = #expect(throws: AMQPError.self, "\(bad)") { try AMQPConfiguration.brokers(bad) }
            #expect(error?.kind == .invalidURL)
        }
    }
}
