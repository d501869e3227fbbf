import Foundation
import MingusCore
import Testing

// Builders for expected trees: every node and key carries its line.

private func s(_ text: String, _ line: Int) -> YAMLNode { YAMLNode(value: .scalar(text), line: line) }

private func null(_ line: Int) -> YAMLNode { YAMLNode(value: .null, line: line) }

private func seq(_ line: Int, _ items: [YAMLNode]) -> YAMLNode { YAMLNode(value: .sequence(items), line: line) }

private func map(_ line: Int, _ entries: [(String, Int, YAMLNode)]) -> YAMLNode {
    YAMLNode(value: .mapping(entries.map { YAMLEntry(key: $0.0, line: $0.1, value: $0.2) }), line: line)
}

/// The error parsing `text` throws, nil when it parses.
private func failure(_ text: String, file: String? = nil) -> YAMLError? {
    do throws(YAMLError) {
        _ = try YAML.parse(text, file: file)
        return nil
    } catch {
        return error
    }
}

/// An Alertmanager-like routing file; the line numbers matter to the expected tree below.
private let alerting = #"""
# Alert routing for the worker cluster.
global:
  resolve_timeout: 5m
  slack_api_url_env: SLACK_URL

route:
  receiver: default
  group_by: [alertname, team]
  group_wait: 30s
  routes:
    - matchers: ['severity="critical"', "team=~\"db.*\""]
      receiver: pager
      continue: true
    - matchers:
        - queue = "payments"
      receiver: payments
      routes:
        - receiver: payments-night   # after hours
          active_time_intervals: [night]

receivers:
- name: default
  slack:
    - url_env: SLACK_URL
      channel: '#alerts'
- name: pager
  webhook:
    - url: http://pager.internal:8080/hook?x=1
      max_alerts: 10
    - url: "https://backup.example/hook"
  email: []

inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [alertname, team]
"""#

@Suite("YAML reader")
struct YAMLTests {
    @Test("an empty document is null at line 1")
    func emptyDocuments() throws {
        #expect(try YAML.parse("") == null(1))
        #expect(try YAML.parse("# only a comment\n\n   # another\n") == null(1))
        #expect(try YAML.parse("---\n") == null(1))
        #expect(try YAML.parse("--- # start\n# nothing\n...\n") == null(1))
    }

    @Test("plain and quoted scalars stay text; null spellings are null")
    func scalars() throws {
        let text = #"""
        plain: hello world   # a comment
        url: http://x:1/p
        hash: a#b
        colon: a:b
        single: 'it''s # not a comment'
        double: "tab\there \"q\" \\ \/ \u00e9 \n"
        empty:
        tilde: ~
        null1: null
        null2: Null
        null3: NULL
        quoted_null: "null"
        single_null: 'null'
        number: 42
        flag: true
        padded:    value with  inner  spaces    
        tab: a	b
        empty_quotes: ""
        """#
        let expected = map(1, [
            ("plain", 1, s("hello world", 1)),
            ("url", 2, s("http://x:1/p", 2)),
            ("hash", 3, s("a#b", 3)),
            ("colon", 4, s("a:b", 4)),
            ("single", 5, s("it's # not a comment", 5)),
            ("double", 6, s("tab\there \"q\" \\ / é \n", 6)),
            ("empty", 7, null(7)),
            ("tilde", 8, null(8)),
            ("null1", 9, null(9)),
            ("null2", 10, null(10)),
            ("null3", 11, null(11)),
            ("quoted_null", 12, s("null", 12)),
            ("single_null", 13, s("null", 13)),
            ("number", 14, s("42", 14)),
            ("flag", 15, s("true", 15)),
            ("padded", 16, s("value with  inner  spaces", 16)),
            ("tab", 17, s("a\tb", 17)),
            ("empty_quotes", 18, s("", 18)),
        ])
        #expect(try YAML.parse(text) == expected)
    }

    @Test("keys are text, plain or quoted")
    func keys() throws {
        let text = """
        my-key.v1/x_y: 1
        "a b": 2
        'c: d': 3
        "q": 4
        spaced  : 5
        été: 6
        foo bar: 7
        a=b: 8
        42: 9
        """
        let expected = map(1, [
            ("my-key.v1/x_y", 1, s("1", 1)),
            ("a b", 2, s("2", 2)),
            ("c: d", 3, s("3", 3)),
            ("q", 4, s("4", 4)),
            ("spaced", 5, s("5", 5)),
            ("été", 6, s("6", 6)),
            ("foo bar", 7, s("7", 7)),
            ("a=b", 8, s("8", 8)),
            ("42", 9, s("9", 9)),
        ])
        #expect(try YAML.parse(text) == expected)
    }

    @Test("nested block mappings, with comments and blank lines between")
    func nestedMappings() throws {
        let text = """
        # header
        a:
          b:
            c: 1

            # inside
            d: 2
          e: 3
        f:   # comment after the key
          g: x
        h: last
        """
        let expected = map(2, [
            ("a", 2, map(3, [
                ("b", 3, map(4, [("c", 4, s("1", 4)), ("d", 7, s("2", 7))])),
                ("e", 8, s("3", 8)),
            ])),
            ("f", 9, map(10, [("g", 10, s("x", 10))])),
            ("h", 11, s("last", 11)),
        ])
        #expect(try YAML.parse(text) == expected)
    }

    @Test("block sequences of scalars, flow collections, compact mappings, empty and nested items")
    func sequences() throws {
        let text = """
        - one
        - 'two'
        - [a, b]
        - name: x
          port: 80
        -
        - ~
        -
          - inner
          - k: v
        -   wide: 1
            more: 2
        - - x
          - y
        """
        let expected = seq(1, [
            s("one", 1),
            s("two", 2),
            seq(3, [s("a", 3), s("b", 3)]),
            map(4, [("name", 4, s("x", 4)), ("port", 5, s("80", 5))]),
            null(6),
            null(7),
            seq(9, [s("inner", 9), map(10, [("k", 10, s("v", 10))])]),
            map(11, [("wide", 11, s("1", 11)), ("more", 12, s("2", 12))]),
            seq(13, [s("x", 13), s("y", 14)]),
        ])
        #expect(try YAML.parse(text) == expected)
    }

    @Test("a sequence may sit at the same indentation as its key")
    func sameIndentSequence() throws {
        let text = """
        receivers:
        - name: a
          slack:
            - url_env: X
        - name: b
          slack:
          - url_env: Y
        after: 1
        """
        let expected = map(1, [
            ("receivers", 1, seq(2, [
                map(2, [("name", 2, s("a", 2)), ("slack", 3, seq(4, [map(4, [("url_env", 4, s("X", 4))])]))]),
                map(5, [("name", 5, s("b", 5)), ("slack", 6, seq(7, [map(7, [("url_env", 7, s("Y", 7))])]))]),
            ])),
            ("after", 8, s("1", 8)),
        ])
        #expect(try YAML.parse(text) == expected)
    }

    @Test("flow sequences and mappings on one line, nested and empty")
    func flowCollections() throws {
        let text = """
        list: [a, b, "c d", 'e']
        map: {a: 1, b: "x"}
        nested: [{a: 1}, [x], []]
        empty_list: []
        empty_map: {}
        trailing: [a, b,]
        nulls: {a: , b: ~, c: null}
        quoted_keys: {"k 1": v, 'k2': "w"}
        words: [hello world, http://x:1/p, a:b]
        spaced: [ a ,b ]   # comment
        """
        let expected = map(1, [
            ("list", 1, seq(1, [s("a", 1), s("b", 1), s("c d", 1), s("e", 1)])),
            ("map", 2, map(2, [("a", 2, s("1", 2)), ("b", 2, s("x", 2))])),
            ("nested", 3, seq(3, [map(3, [("a", 3, s("1", 3))]), seq(3, [s("x", 3)]), seq(3, [])])),
            ("empty_list", 4, seq(4, [])),
            ("empty_map", 5, map(5, [])),
            ("trailing", 6, seq(6, [s("a", 6), s("b", 6)])),
            ("nulls", 7, map(7, [("a", 7, null(7)), ("b", 7, null(7)), ("c", 7, null(7))])),
            ("quoted_keys", 8, map(8, [("k 1", 8, s("v", 8)), ("k2", 8, s("w", 8))])),
            ("words", 9, seq(9, [s("hello world", 9), s("http://x:1/p", 9), s("a:b", 9)])),
            ("spaced", 10, seq(10, [s("a", 10), s("b", 10)])),
        ])
        #expect(try YAML.parse(text) == expected)
    }

    @Test("document markers, a lone root value, a value on the next line, CRLF")
    func documentShapes() throws {
        #expect(try YAML.parse("---\na: 1\n...\n") == map(2, [("a", 2, s("1", 2))]))
        #expect(try YAML.parse("--- # start\na: 1\n...\n# trailing comment\n") == map(2, [("a", 2, s("1", 2))]))
        #expect(try YAML.parse("hello") == s("hello", 1))
        #expect(try YAML.parse("\n\n[a, {b: c}]\n") == seq(3, [s("a", 3), map(3, [("b", 3, s("c", 3))])]))
        #expect(try YAML.parse("key:\n  value\nnext: 2") == map(1, [("key", 1, s("value", 2)), ("next", 3, s("2", 3))]))
        #expect(try YAML.parse("  a: 1\n  b: 2\n") == map(1, [("a", 1, s("1", 1)), ("b", 2, s("2", 2))]))
        #expect(try YAML.parse("a: 1\r\nb:\r\n  - x\r\n") == map(1, [("a", 1, s("1", 1)), ("b", 2, seq(3, [s("x", 3)]))]))
    }

    @Test("accessors read scalars, sequences, mappings and keys")
    func accessors() throws {
        let root = try YAML.parse("a: x\nb: [1]\nc: {d: e}\nn: ~\n")
        #expect(root["a"]?.scalar == "x")
        #expect(root["b"]?.sequence == [s("1", 2)])
        #expect(root["c"]?.mapping == [YAMLEntry(key: "d", line: 3, value: s("e", 3))])
        #expect(root["c"]?["d"]?.scalar == "e")
        #expect(root["n"] == null(4))
        #expect(root["n"]?.scalar == nil)
        #expect(root["missing"] == nil)
        #expect(root["a"]?["a"] == nil)
        #expect(root.scalar == nil)
        #expect(root.sequence == nil)
        #expect(root["a"]?.mapping == nil)
        #expect(root.mapping?.map(\.key) == ["a", "b", "c", "n"])
    }

    @Test("an Alertmanager-like routing file gives the exact tree")
    func alertmanagerDocument() throws {
        let expected = map(2, [
            ("global", 2, map(3, [
                ("resolve_timeout", 3, s("5m", 3)),
                ("slack_api_url_env", 4, s("SLACK_URL", 4)),
            ])),
            ("route", 6, map(7, [
                ("receiver", 7, s("default", 7)),
                ("group_by", 8, seq(8, [s("alertname", 8), s("team", 8)])),
                ("group_wait", 9, s("30s", 9)),
                ("routes", 10, seq(11, [
                    map(11, [
                        ("matchers", 11, seq(11, [s(#"severity="critical""#, 11), s(#"team=~"db.*""#, 11)])),
                        ("receiver", 12, s("pager", 12)),
                        ("continue", 13, s("true", 13)),
                    ]),
                    map(14, [
                        ("matchers", 14, seq(15, [s(#"queue = "payments""#, 15)])),
                        ("receiver", 16, s("payments", 16)),
                        ("routes", 17, seq(18, [
                            map(18, [
                                ("receiver", 18, s("payments-night", 18)),
                                ("active_time_intervals", 19, seq(19, [s("night", 19)])),
                            ]),
                        ])),
                    ]),
                ])),
            ])),
            ("receivers", 21, seq(22, [
                map(22, [
                    ("name", 22, s("default", 22)),
                    ("slack", 23, seq(24, [
                        map(24, [("url_env", 24, s("SLACK_URL", 24)), ("channel", 25, s("#alerts", 25))]),
                    ])),
                ]),
                map(26, [
                    ("name", 26, s("pager", 26)),
                    ("webhook", 27, seq(28, [
                        map(28, [
                            ("url", 28, s("http://pager.internal:8080/hook?x=1", 28)),
                            ("max_alerts", 29, s("10", 29)),
                        ]),
                        map(30, [("url", 30, s("https://backup.example/hook", 30))]),
                    ])),
                    ("email", 31, seq(31, [])),
                ]),
            ])),
            ("inhibit_rules", 33, seq(34, [
                map(34, [
                    ("source_matchers", 34, seq(34, [s(#"severity="critical""#, 34)])),
                    ("target_matchers", 35, seq(35, [s(#"severity="warning""#, 35)])),
                    ("equal", 36, seq(36, [s("alertname", 36), s("team", 36)])),
                ]),
            ])),
        ])
        let root = try YAML.parse(alerting)
        #expect(root == expected)
        let routes = try #require(root["route"]?["routes"]?.sequence)
        #expect(routes.count == 2)
        #expect(routes[0]["matchers"]?.sequence?.compactMap(\.scalar) == [#"severity="critical""#, #"team=~"db.*""#])
    }

    @Test("anchors and aliases: an alias is the anchored node, with its lines (an anchored node starts at its anchor)")
    func anchorsAndAliases() throws {
        let text = """
        base: &base
          url: http://x
          tags: &tags [a, b]
        copy: *base
        list:
          - *tags
          - &one 1
          - *one
        """
        let base = map(1, [("url", 2, s("http://x", 2)), ("tags", 3, seq(3, [s("a", 3), s("b", 3)]))])
        let expected = map(1, [
            ("base", 1, base),
            ("copy", 4, base),
            ("list", 5, seq(6, [seq(3, [s("a", 3), s("b", 3)]), s("1", 7), s("1", 7)])),
        ])
        #expect(try YAML.parse(text) == expected)
    }

    @Test("merge keys: a mapping's own keys win, then earlier merged mappings over later ones")
    func mergeKeys() throws {
        let text = """
        defaults: &defaults
          send_resolved: false
          timeout: 5s
        limits: &limits
          timeout: 9s
          burst: 3
        one:
          <<: *defaults
          timeout: 30s
        two:
          <<: [*defaults, *limits]
          extra: x
        nested:
          <<: {<<: *limits, burst: 4}
        quoted:
          "<<": literal
        """
        let root = try YAML.parse(text)
        #expect(root["one"] == map(8, [("timeout", 9, s("30s", 9)), ("send_resolved", 2, s("false", 2))]))
        #expect(root["two"] == map(11, [
            ("extra", 12, s("x", 12)), ("send_resolved", 2, s("false", 2)), ("timeout", 3, s("5s", 3)), ("burst", 6, s("3", 6)),
        ]))
        #expect(root["nested"] == map(14, [("burst", 14, s("4", 14)), ("timeout", 5, s("9s", 5))]))
        #expect(root["quoted"] == map(16, [("<<", 16, s("literal", 16))]))
        #expect(failure("a: &a 1\nb:\n  <<: *a") == YAMLError(line: 1, message: "'<<' merges a mapping or a list of mappings"))
        #expect(failure("a: &a {x: 1}\nb:\n  <<: [*a, [y]]") == YAMLError(line: 3, message: "'<<' merges a mapping or a list of mappings"))
    }

    @Test("block scalars: literal and folded, with their chomping indicators")
    func blockScalars() throws {
        let text = """
        literal: |
          line one
            indented
          line three
        folded: >
          folded
          text

          new paragraph
        strip: |-
          no newline
        keep: |+
          kept

        folded_strip: >-
          [{{ .Status }}] {{ .CommonLabels.alertname }}
          on {{ .CommonLabels.cluster }}
        after: x
        """
        let root = try YAML.parse(text)
        #expect(root["literal"]?.scalar == "line one\n  indented\nline three\n")
        #expect(root["folded"]?.scalar == "folded text\nnew paragraph\n")
        #expect(root["strip"]?.scalar == "no newline")
        #expect(root["keep"]?.scalar == "kept\n\n")
        #expect(root["folded_strip"]?.scalar == "[{{ .Status }}] {{ .CommonLabels.alertname }} on {{ .CommonLabels.cluster }}")
        #expect(root.mapping?.map(\.line) == [1, 5, 10, 12, 15, 18])
        #expect(root["literal"]?.line == 1)
        #expect(root["after"] == s("x", 18))
    }

    @Test("plain, quoted and flow values over several lines")
    func multiLineValues() throws {
        let text = """
        plain: hello
          world
        double: "one
          two"
        joined: "http://x/\\
          y"
        matchers: [
          'severity="critical"',
          team=~"db|cache"
        ]
        map: {a: 1,
              b: 2}
        """
        let expected = map(1, [
            ("plain", 1, s("hello world", 1)),
            ("double", 3, s("one two", 3)),
            ("joined", 5, s("http://x/y", 5)),
            ("matchers", 7, seq(7, [s(#"severity="critical""#, 8), s(#"team=~"db|cache""#, 9)])),
            ("map", 11, map(11, [("a", 11, s("1", 11)), ("b", 12, s("2", 12))])),
        ])
        #expect(try YAML.parse(text) == expected)
    }

    @Test("an Alertmanager file with anchors, merge keys and templates in block scalars")
    func alertmanagerWithAnchors() throws {
        let text = #"""
        global:
          resolve_timeout: 5m
        route:
          receiver: default
          group_by: &groups [alertname, cluster]
          routes:
            - &critical
              matchers: [severity="critical"]
              receiver: pager
              continue: true
            - <<: *critical
              receiver: pager-backup
              continue: false
        receivers:
        - name: default
          webhook_configs:
          - &hook
            url: http://hooks.internal/alerts
            send_resolved: true
            http_config:
              bearer_token_file: /etc/alertmanager/token
        - name: pager
          webhook_configs:
          - <<: *hook
            url: http://pager.internal/hook
        - name: pager-backup
          email_configs:
          - to: oncall@example.com
            html: |
              <h1>{{ .CommonLabels.alertname }}</h1>
              <p>{{ .CommonAnnotations.description }}</p>
            headers:
              Subject: >-
                [{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}
                on {{ .CommonLabels.cluster }}
        inhibit_rules:
        - source_matchers: [severity="critical"]
          target_matchers: [severity="warning"]
          equal: *groups
        """#
        let root = try YAML.parse(text, file: "alertmanager.yml")
        let routes = try #require(root["route"]?["routes"]?.sequence)
        #expect(routes.map { $0["receiver"]?.scalar } == ["pager", "pager-backup"])
        #expect(routes.map { $0["continue"]?.scalar } == ["true", "false"])
        #expect(routes[1]["matchers"] == seq(8, [s(#"severity="critical""#, 8)]))
        let receivers = try #require(root["receivers"]?.sequence)
        let pager = try #require(receivers[1]["webhook_configs"]?.sequence?.first)
        #expect(pager["url"] == s("http://pager.internal/hook", 25))
        #expect(pager["send_resolved"] == s("true", 19))
        #expect(pager["http_config"]?["bearer_token_file"] == s("/etc/alertmanager/token", 21))
        let email = try #require(receivers[2]["email_configs"]?.sequence?.first)
        #expect(email["html"]?.scalar == "<h1>{{ .CommonLabels.alertname }}</h1>\n<p>{{ .CommonAnnotations.description }}</p>\n")
        #expect(email["headers"]?["Subject"]?.scalar == "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} on {{ .CommonLabels.cluster }}")
        #expect(root["inhibit_rules"]?.sequence?.first?["equal"] == seq(5, [s("alertname", 5), s("cluster", 5)]))
    }

    @Test("errors read 'file:line: message', or 'line N: message' without a file")
    func errorDescription() throws {
        let error = try #require(failure("a: 1\nb: *x", file: "alerting.yaml"))
        #expect(error == YAMLError(file: "alerting.yaml", line: 2, message: "found undefined alias"))
        #expect(error.description == "alerting.yaml:2: found undefined alias")
        #expect(failure("a: 1\nb: *x")?.description == "line 2: found undefined alias")
    }

    @Test("malformed documents are refused with their line")
    func refusals() throws {
        let cases: [(String, Int, String)] = [
            // Syntax, as libyaml words it.
            ("a: b: c", 1, "mapping values are not allowed in this context"),
            ("a: [1, 2\nb: 3", 2, "did not find expected ',' or ']' (while parsing a flow sequence from line 1)"),
            ("a: \"abc", 1, "found unexpected end of stream (while scanning a quoted scalar)"),
            ("a: \"\\q\"", 1, "found unknown escape character (while parsing a quoted scalar)"),
            ("a:\n\tb: 1", 2, "found character that cannot start any token (while scanning for the next token)"),
            ("a:\n    b: 1\n  c: 2", 3, "did not find expected key (while parsing a block mapping from line 1)"),
            ("a: 1\n- b", 2, "did not find expected key (while parsing a block mapping from line 1)"),
            ("a: @x", 1, "found character that cannot start any token (while scanning for the next token)"),
            // Anchors and aliases.
            ("a: *missing", 1, "found undefined alias"),
            ("a: &x [*x]", 1, "found undefined alias"),
            // Keys.
            ("a: 1\nb: 2\ngroup_by: [a]\nc: 3\ngroup_by: [b]", 5, "duplicate key 'group_by' (first on line 3)"),
            ("- name: x\n  other: 1\n  \"name\": y", 3, "duplicate key 'name' (first on line 1)"),
            ("a: {x: 1, x: 2}", 1, "duplicate key 'x'"),
            ("? [a, b]\n: c", 1, "a key must be a text value"),
            ("~: 1", 1, "a key must be a text value"),
            // Documents.
            ("a: 1\n---\nb: 2", 3, "only one document is supported"),
            ("a: 1\n---\n", 2, "only one document is supported"),
            ("route:\n  group_by: [alertname\n", 2, "did not find expected ',' or ']' (while parsing a flow sequence)"),
        ]
        for (text, line, message) in cases {
            #expect(failure(text) == YAMLError(line: line, message: message), "\(text.debugDescription)")
        }
    }

    @Test("aliases nested in aliases cannot expand a document without bound")
    func aliasBomb() throws {
        var text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for (name, previous) in zip(["b", "c", "d", "e"], ["a", "b", "c", "d"]) {
            text += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 10).joined(separator: ", ") + "]\n"
        }
        #expect(failure(text)?.message == "the document holds more than \(YAML.nodeLimit) nodes once its aliases are expanded")
    }

    @Test("an error names the line in a real routing file")
    func errorInAlertingFile() throws {
        let broken = alerting.replacingOccurrences(of: "      receiver: payments\n", with: "      receiver: payments\n      receiver: other\n")
        #expect(failure(broken) == YAMLError(line: 17, message: "duplicate key 'receiver' (first on line 16)"))
        let tabbed = alerting.replacingOccurrences(of: "  group_wait: 30s", with: "\tgroup_wait: 30s")
        #expect(failure(tabbed) == YAMLError(line: 9, message: "found character that cannot start any token (while scanning for the next token)"))
    }
}
