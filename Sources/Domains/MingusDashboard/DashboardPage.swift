import Crypto
import Foundation
import Mustache

/// The page around the panels, the sign-in form, the stylesheet and the Content-Security-Policy
/// that allows exactly that stylesheet (by its SHA-256) and nothing else: no scripts, no
/// external fonts, images or frames. Everything works with scripts off.
enum DashboardPage {
    static let stylesheet = """
        :root{color-scheme:light;--ink:#1d2733;--muted:#5b6776;--line:#d8dee6;--ok:#2f7d4f;--warn:#b7791f;--bad:#b42318;--bg:#f6f8fa}
        *{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
        header{display:flex;align-items:center;justify-content:space-between;gap:1rem;padding:.8rem 1.5rem;background:#fff;border-bottom:1px solid var(--line)}
        header h1{font-size:1.2rem;margin:0}.who{color:var(--muted);margin:0;flex:1}
        main{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:1rem;padding:1rem 1.5rem}
        .panel{background:#fff;border:1px solid var(--line);border-radius:6px;padding:1rem 1.2rem;overflow-x:auto}
        .panel h2{font-size:1.05rem;margin:0 0 .6rem}.figures{display:flex;flex-wrap:wrap;gap:.4rem 1.4rem}.figures p{margin:0;color:var(--muted)}
        .figure{display:block;font-size:1.5rem;font-weight:600;color:var(--ink)}
        table{border-collapse:collapse;width:100%;margin-top:.8rem;font-size:.9rem}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line)}
        th{color:var(--muted);font-weight:600}tr.overdue td{color:var(--bad)}.outcome-failure,.outcome-denied{color:var(--bad)}
        .chart{width:100%;height:auto;margin-top:.8rem}.chart text{font-size:12px;fill:var(--muted)}.axis{stroke:var(--line)}
        .authorized,.severity-low{fill:var(--ok)}.declined,.severity-medium{fill:var(--warn)}.failed,.severity-high{fill:var(--bad)}.severity-critical{fill:#7a1010}
        .legend{color:var(--muted);font-size:.85rem}.key{font-size:1rem}.authorized-key{color:var(--ok)}.declined-key{color:var(--warn)}.failed-key{color:var(--bad)}
        .health-healthy{color:var(--ok)}.health-degraded{color:var(--warn)}.health-down{color:var(--bad)}
        .error{color:var(--bad)}footer{color:var(--muted);font-size:.8rem;padding:0 1.5rem 1.5rem}
        button{font:inherit;padding:.35rem .9rem;border:1px solid var(--line);border-radius:4px;background:#fff;cursor:pointer}
        .login{max-width:360px;margin:12vh auto;background:#fff;border:1px solid var(--line);border-radius:6px;padding:1.5rem}
        .login h1{font-size:1.2rem;margin-top:0}.login label{display:block;margin:.8rem 0 .2rem}.login input{width:100%;font:inherit;padding:.4rem}
        .login button{margin-top:1.2rem;width:100%}
        """

    /// `default-src 'none'`; the stylesheet by hash; forms post only here; no framing.
    static let contentSecurityPolicy: String = {
        let hash = Data(SHA256.hash(data: Array(stylesheet.utf8))).base64EncodedString()
        return "default-src 'none'; style-src 'sha256-\(hash)'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    }()

    // The templates are constants of this module: one that does not parse fails every page test.
    static let page = try! MustacheTemplate(string: """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="icon" href="data:,"><title>Mingus compliance dashboard</title><style>{{{css}}}</style></head>
        <body><header><h1>Mingus compliance</h1>
        <p class="who">Signed in as <strong id="username">{{username}}</strong> · signed out after 15 idle minutes, by {{expires}} UTC at the latest</p>
        <form method="post" action="/dashboard/logout"><input type="hidden" name="csrf_token" value="{{csrf}}"><button type="submit">Sign out</button></form>
        </header>
        <main>{{#panels}}<section class="panel" id="panel-{{id}}" aria-labelledby="title-{{id}}"><h2 id="title-{{id}}">{{title}}</h2>
        {{#error}}<p class="error">This panel cannot be shown right now.</p>{{/error}}{{{body}}}</section>
        {{/panels}}</main>
        <footer>Figures as of {{generated}} UTC. Reload the page for newer ones.</footer></body></html>
        """)

    static let login = try! MustacheTemplate(string: """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="icon" href="data:,"><title>Sign in · Mingus compliance</title><style>{{{css}}}</style></head>
        <body><form class="login" method="post" action="/dashboard/login"><h1>Mingus compliance</h1>
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        <label for="username">Username</label><input id="username" name="username" autocomplete="username" required value="{{username}}">
        <label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
        <label for="code">Authenticator code or recovery code</label><input id="code" name="code" autocomplete="one-time-code" inputmode="numeric" required>
        <button type="submit">Sign in</button></form></body></html>
        """)

    static let forbidden = try! MustacheTemplate(string: """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Not allowed · Mingus compliance</title><style>{{{css}}}</style></head>
        <body><div class="login"><h1>Not allowed</h1><p>{{message}}</p><p><a href="/dashboard/login">Sign in</a></p></div></body></html>
        """)
}
