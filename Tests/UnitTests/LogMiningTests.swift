import MingusLogMining
import Testing

@Suite("Log template mining")
struct LogMiningTests {
    @Test("masking replaces numbers, IPs and ports, paths, URLs, key=value values and ids with digits")
    func masking() {
        #expect(LogMasking.maskedTokens("Invalid user admin from 173.234.31.186 port 22")
                == ["Invalid", "user", "admin", "from", "<*>", "port", "<*>"])
        #expect(LogMasking.maskedTokens("session opened for user root by (uid=0)")
                == ["session", "opened", "for", "user", "root", "by", "(uid=<*>)"])
        #expect(LogMasking.maskedTokens("Served block blk_-6952295868487656571 to /10.250.19.102:54106")
                == ["Served", "block", "<*>", "to", "<*>"])
        #expect(LogMasking.maskedTokens("workerEnv.init() ok /etc/httpd/conf/workers2.properties")
                == ["workerEnv.init()", "ok", "<*>"])
        #expect(LogMasking.maskedTokens("fetch https://example.com/a/b failed: user=bob")
                == ["fetch", "https:<*>", "failed:", "user=<*>"])
        #expect(LogMasking.maskedTokens("chdir(/p/gb1/stella) failed")
                == ["chdir(<*>)", "failed"])
        #expect(LogMasking.maskedTokens("proxy.example.com:5070 ssh2 0x1f 550e8400-e29b-41d4-a716-446655440000")
                == ["proxy.example.com:<*>", "<*>"])
        #expect(LogMasking.maskedTokens("  tabs\tand  spaces  ") == ["tabs", "and", "spaces"])
    }

    @Test("a run of variables is one variable, so lists of different lengths share a template")
    func variableRuns() {
        var miner = LogTemplateMiner()
        let one = miner.add("ask 10.0.0.1:50010 to delete blk_1")
        let three = miner.add("ask 10.0.0.2:50010 to delete blk_2 blk_3 blk_4")
        #expect(one.templateID == three.templateID)
        #expect(three.templateText == "ask <*>:<*> to delete <*>")
    }

    @Test("a position with four different words becomes a variable and the template keeps its id")
    func stableIDsAcrossGeneralisation() {
        var miner = LogTemplateMiner()
        let first = miner.add("Invalid user webmaster from 10.0.0.1")
        #expect(first.isNew && first.templateText == "Invalid user webmaster from <*>")
        let second = miner.add("Invalid user test from 10.0.0.2")
        let third = miner.add("Invalid user oracle from 10.0.0.3")
        #expect(second.isNew && third.isNew)
        let fourth = miner.add("Invalid user guest from 10.0.0.4")
        #expect(fourth.templateID == first.templateID)
        #expect(!fourth.isNew && fourth.textChanged)
        #expect(fourth.templateText == "Invalid user <*> from <*>")
        #expect(fourth.absorbedTemplateIDs == [second.templateID, third.templateID])
        #expect(miner.templateCount == 1)
        #expect(miner.template(id: first.templateID)?.count == 4)
        #expect(miner.template(id: second.templateID) == nil)
        let fifth = miner.add("Invalid user webmaster from 10.0.0.9")
        #expect(fifth.templateID == first.templateID && !fifth.isNew && !fifth.textChanged)
    }

    @Test("two alternatives in one position stay two templates")
    func fewAlternativesStayConstant() {
        var miner = LogTemplateMiner()
        let accepted = miner.add("Accepted password for root from 10.0.0.1 port 22 ssh2")
        let failed = miner.add("Failed password for root from 10.0.0.2 port 22 ssh2")
        #expect(accepted.templateID != failed.templateID)
        #expect(miner.add("Accepted password for root from 10.0.0.3 port 22 ssh2").templateID == accepted.templateID)
    }

    @Test("a variable seen masked makes the same position of a sibling a variable at once")
    func maskedEvidenceMerges() {
        var miner = LogTemplateMiner()
        let word = miner.add("Invalid user admin from 10.0.0.1")
        let digits = miner.add("Invalid user user42 from 10.0.0.2")
        #expect(digits.templateID == word.templateID)
        #expect(digits.templateText == "Invalid user <*> from <*>")
        #expect(digits.textChanged && !digits.isNew)
    }

    @Test("a miner created from saved templates matches them and continues their ids")
    func seedingFromSavedTemplates() throws {
        let saved = [LogTemplate(id: 41, text: "Connection closed by <*> [preauth]", count: 10),
                     LogTemplate(id: 7, tokens: ["Received", "disconnect", "from", "<*>"], count: 3)]
        var miner = try LogTemplateMiner(saved: saved)
        #expect(miner.nextID == 42)
        let closed = miner.add("Connection closed by 10.0.0.1 [preauth]")
        #expect(closed.templateID == 41 && !closed.isNew && !closed.textChanged)
        #expect(miner.template(id: 41)?.count == 11)
        #expect(miner.add("Received disconnect from 10.0.0.2:11").templateID == 7)
        let fresh = miner.add("Server listening on 0.0.0.0 port 22.")
        #expect(fresh.isNew && fresh.templateID == 42)
        #expect(miner.templates.map(\.id) == [7, 41, 42])

        #expect(throws: LogMiningError.self) {
            _ = try LogTemplateMiner(saved: [LogTemplate(id: 1, text: "a", count: 1), LogTemplate(id: 1, text: "b", count: 1)])
        }
        #expect(throws: LogMiningError.self) {
            _ = try LogTemplateMiner(configuration: .init(maximumTemplates: 1),
                                     saved: [LogTemplate(id: 1, text: "a", count: 1), LogTemplate(id: 2, text: "b", count: 1)])
        }
    }

    @Test("the template cap evicts the least recently matched template, and long messages are folded")
    func boundedMemory() {
        var miner = LogTemplateMiner(configuration: .init(maximumTemplates: 3, maximumTokens: 4))
        let alpha = miner.add("alpha event happened")
        let beta = miner.add("beta thing")
        let gamma = miner.add("gamma")
        _ = miner.add("alpha event happened")
        let delta = miner.add("delta x y")
        #expect(delta.isNew && delta.evictedTemplateID == beta.templateID)
        #expect(miner.templateCount == 3)
        #expect(Set(miner.templates.map(\.id)) == [alpha.templateID, gamma.templateID, delta.templateID])
        for index in 0..<1000 {
            _ = miner.add("unique\(String(UnicodeScalar(UInt8(97 + index % 26)))) word\(String(repeating: "q", count: index % 7 + 1)) z")
            #expect(miner.templateCount <= 3)
        }
        let long = miner.add("one two three four five six seven")
        #expect(long.templateText == "one two three <*>")
    }

    @Test("the same messages in the same order give the same templates and ids")
    func determinism() {
        var messages: [String] = []
        let users = ["root", "admin", "oracle", "test", "guest", "ftp"]
        for index in 0..<500 {
            switch index % 4 {
            case 0: messages.append("Invalid user \(users[index / 4 % users.count]) from 10.0.\(index % 250).1")
            case 1: messages.append("Connection closed by 10.1.\(index % 250).2 [preauth]")
            case 2: messages.append("\(index % 3 == 0 ? "Accepted" : "Failed") password for \(users[index % 5]) from 10.2.0.\(index % 250) port \(index) ssh2")
            default: messages.append("session \(index % 8 == 3 ? "opened" : "closed") for user \(users[index % 6])")
            }
        }
        func run() -> ([LogTemplateMatch], [LogTemplate]) {
            var miner = LogTemplateMiner()
            let matches = messages.map { miner.add($0) }
            return (matches, miner.templates)
        }
        let (firstMatches, firstTemplates) = run()
        let (secondMatches, secondTemplates) = run()
        #expect(firstMatches == secondMatches)
        #expect(firstTemplates == secondTemplates)
        #expect(firstTemplates.contains { $0.text == "Invalid user <*> from <*>" })
    }

    @Test("GA counts a message only when its predicted group is exactly its true group")
    func groupingAccuracy() {
        // Perfect up to renaming.
        #expect(GroupingAccuracy(predicted: [1, 1, 2, 3], truth: ["a", "a", "b", "c"]).value == 1)
        // Group {0, 1, 2} predicted, truth {0, 1} and {2}: all three wrong; {3} right → 1/4.
        let merged = GroupingAccuracy(predicted: [1, 1, 1, 2], truth: ["a", "a", "b", "c"])
        #expect(merged.correct == 1 && merged.total == 4 && merged.value == 0.25)
        // Truth {0, 1, 2, 3} split into {0, 1, 2} and {3}: nothing right; {4, 5} right → 2/6.
        let split = GroupingAccuracy(predicted: [1, 1, 1, 2, 3, 3], truth: ["a", "a", "a", "a", "b", "b"])
        #expect(split.correct == 2 && split.value == 2.0 / 6.0)
        #expect(GroupingAccuracy(predicted: [Int](), truth: [String]()).value == 1)
    }
}
