//! The page templates, embedded in the binary and autoescaped (names end in `.html`).

use std::sync::OnceLock;

use mandate_core::OAuthError;
use minijinja::Environment;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("consent.html", include_str!("templates/consent.html")),
    ("account.html", include_str!("templates/account.html")),
    ("lineage.html", include_str!("templates/lineage.html")),
    ("logout.html", include_str!("templates/logout.html")),
    ("message.html", include_str!("templates/message.html")),
    ("error.html", include_str!("templates/error.html")),
];

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            // The templates are part of the binary; a broken one is caught by the unit test below.
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "template does not parse");
            }
        }
        env
    })
}

pub fn render(name: &str, context: minijinja::Value) -> Result<String, OAuthError> {
    environment().get_template(name).and_then(|t| t.render(context)).map_err(|e| {
        tracing::error!(template = name, error = %e, "rendering a page failed");
        OAuthError::server_error()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_escapes() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let html =
            render("error.html", minijinja::context! { code => "invalid_request", description => "<script>" }).unwrap();
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"), "{html}");
    }
}
