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
private func failure(_ text: String) -> YAMLError? {
    do throws(YAMLError) {
        _ = try YAML.parse(text)
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

@Suite("YAML subset parser")
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

    @Test("plain keys use letters, digits, _ - . /; quoted keys may hold anything")
    func keys() throws {
        let text = """
        my-key.v1/x_y: 1
        "a b": 2
        'c: d': 3
        "q": 4
        spaced  : 5
        été: 6
        """
        let expected = map(1, [
            ("my-key.v1/x_y", 1, s("1", 1)),
            ("a b", 2, s("2", 2)),
            ("c: d", 3, s("3", 3)),
            ("q", 4, s("4", 4)),
            ("spaced", 5, s("5", 5)),
            ("été", 6, s("6", 6)),
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

    @Test("errors read 'line N: message'")
    func errorDescription() throws {
        let error = try #require(failure("a: 1\nb: &x 2"))
        #expect(error.description == "line 2: anchors and aliases are not supported")
        #expect("\(error)" == "line 2: anchors and aliases are not supported")
    }

    @Test("unsupported features and malformed documents are refused with their line")
    func refusals() throws {
        let cases: [(String, Int, String)] = [
            // Unsupported YAML features.
            ("a: &x 1", 1, "anchors and aliases are not supported"),
            ("a: 1\nb: *x", 2, "anchors and aliases are not supported"),
            ("- &x a", 1, "anchors and aliases are not supported"),
            ("&x a: 1", 1, "anchors and aliases are not supported"),
            ("a: !!str 1", 1, "tags are not supported"),
            ("a:\n  - !tag x", 2, "tags are not supported"),
            ("a: |\n  text", 1, "block scalars (| and >) are not supported"),
            ("a: >-\n  text", 1, "block scalars (| and >) are not supported"),
            ("? a\n: b", 1, "complex keys (?) are not supported"),
            ("a: 1\n? b", 2, "complex keys (?) are not supported"),
            ("%YAML 1.2\n---\na: 1", 1, "directives (%YAML, %TAG) are not supported"),
            ("- - x", 1, "nested sequences on one line (- -) are not supported"),
            ("a: - b", 1, "a sequence item cannot start here"),
            // Multi-line values.
            ("a: hello\n  world", 2, "multi-line plain scalars are not supported"),
            ("- hello\n  world", 2, "multi-line plain scalars are not supported"),
            ("a:\n  x\n  y", 3, "multi-line plain scalars are not supported"),
            ("a: [1,\n  2]", 1, "a flow collection must end on its line"),
            ("a: {x: 1", 1, "a flow collection must end on its line"),
            ("a: [1, # two\n  2]", 1, "a flow collection must end on its line"),
            // Indentation.
            ("a:\n    b: 1\n  c: 2", 3, "inconsistent indentation"),
            ("- a: 1\n b: 2", 2, "inconsistent indentation"),
            ("  a: 1\nb: 2", 2, "inconsistent indentation"),
            ("a:\n  b: 1\n    c: 2", 3, "unexpected indentation"),
            ("a: \"x\"\n  b: 1", 2, "unexpected indentation"),
            ("- a\n  - b", 2, "unexpected indentation"),
            ("a:\n\tb: 1", 2, "tabs are not allowed for indentation"),
            ("a:\n  \tb: 1", 2, "tabs are not allowed for indentation"),
            ("-\tx", 1, "tabs are not allowed for indentation"),
            // Quotes.
            ("a: \"abc", 1, "unterminated double-quoted string"),
            ("a: 'abc", 1, "unterminated single-quoted string"),
            ("a: 'it''s", 1, "unterminated single-quoted string"),
            ("a: \"abc\\\"", 1, "unterminated double-quoted string"),
            ("\"a: 1", 1, "unterminated double-quoted string"),
            ("a: \"x\" y", 1, "unexpected text after closing quote"),
            ("a: 'x'y", 1, "unexpected text after closing quote"),
            ("a: \"x\"#c", 1, "unexpected text after closing quote"),
            ("a: [\"x\"y]", 1, "unexpected text after closing quote"),
            ("a: \"\\q\"", 1, "unsupported escape '\\q'"),
            ("a: \"\\u12\"", 1, "invalid \\u escape"),
            ("a: \"\\uD800\"", 1, "invalid \\u escape"),
            // Structure.
            ("a: 1\nb", 2, "expected 'key: value'"),
            ("a:\n  b: 1\n  just text", 3, "expected 'key: value'"),
            ("a:\n  x\n  b: 1", 2, "expected 'key: value'"),
            ("a: 1\n- b", 2, "cannot mix sequence items and mapping keys at the same level"),
            ("- a\nb: 1", 2, "cannot mix sequence items and mapping keys at the same level"),
            ("a:\n  - x\n  b: 1", 3, "cannot mix sequence items and mapping keys at the same level"),
            ("a: 1\nb: 2\ngroup_by: [a]\nc: 3\ngroup_by: [b]", 5, "duplicate key 'group_by' (first on line 3)"),
            ("- name: x\n  name: y", 2, "duplicate key 'name' (first on line 1)"),
            ("a: {x: 1, x: 2}", 1, "duplicate key 'x' (first on line 1)"),
            ("a: b: c", 1, "a plain scalar cannot contain ': ' (quote it)"),
            ("a: b:", 1, "a plain scalar cannot contain ': ' (quote it)"),
            ("foo bar: 1", 1, "invalid key 'foo bar' (quote it)"),
            ("a=b: 1", 1, "invalid key 'a=b' (quote it)"),
            (": x", 1, "expected a key before ':'"),
            ("a: @x", 1, "'@' cannot start a plain scalar (quote it)"),
            ("a: [1] x", 1, "unexpected text after flow collection"),
            ("a: [1, , 2]", 1, "expected a value before ','"),
            ("a: [1 2}", 1, "expected ',' or ']' in flow sequence"),
            ("a: {x: 1 y: 2}", 1, "expected ',' or '}' in flow mapping"),
            ("a: {x}", 1, "expected ':' after key 'x'"),
            ("a: {x y: 1}", 1, "invalid key 'x y' (quote it)"),
            // Documents.
            ("a: 1\n---\nb: 2", 2, "only one document is supported"),
            ("a: 1\n...\nb: 2", 2, "only one document is supported"),
            ("---\n---\na: 1", 2, "only one document is supported"),
            ("--- a: 1", 1, "content on the '---' line is not supported"),
        ]
        for (text, line, message) in cases {
            #expect(failure(text) == YAMLError(line: line, message: message), "\(text.debugDescription)")
        }
    }

    @Test("an error names the line in a real routing file")
    func errorInAlertingFile() throws {
        let broken = alerting.replacingOccurrences(of: "      receiver: payments\n", with: "      receiver: payments\n      receiver: other\n")
        #expect(failure(broken) == YAMLError(line: 17, message: "duplicate key 'receiver' (first on line 16)"))
        let tabbed = alerting.replacingOccurrences(of: "  group_wait: 30s", with: "\tgroup_wait: 30s")
        #expect(failure(tabbed) == YAMLError(line: 9, message: "tabs are not allowed for indentation"))
    }
}
