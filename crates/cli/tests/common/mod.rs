//! What several CLI tests share: a person's browser walking mandate's sign-in and consent pages,
//! and one test per database backend.
#![allow(dead_code)]

use std::collections::BTreeMap;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

/// Walks `authorization_url` as a person would: signs in as `username` when asked, approves the
/// consent page, keeps cookies, and stops at the first redirect away from mandate (the client's
/// redirect URI, with the code), which it returns without following.
pub async fn sign_in_and_approve(authorization_url: &str, username: &str, password: &str) -> String {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let origin = url::Url::parse(authorization_url).unwrap().origin();
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let mut url = authorization_url.to_owned();
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..10 {
        let cookie = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let request = match form.take() {
            Some(fields) => http.post(url.split('?').next().unwrap()).form(&fields),
            None => http.get(&url),
        };
        let res = request.header(COOKIE, cookie).send().await.unwrap();
        for value in res.headers().get_all(SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap().to_owned();
            let (k, v) = pair.split_once('=').unwrap();
            cookies.insert(k.to_owned(), v.to_owned());
        }
        if let Some(location) = res.headers().get(LOCATION) {
            url = location.to_str().unwrap().to_owned();
            if url::Url::parse(&url).map(|u| u.origin()).ok() != Some(origin.clone()) {
                return url;
            }
            continue;
        }
        let page = res.text().await.unwrap();
        let field = |name: &str| {
            let marker = format!("name=\"{name}\" value=\"");
            let start = page.find(&marker)? + marker.len();
            let end = page[start..].find('"')? + start;
            Some(page[start..end].replace("&#x2f;", "/").replace("&amp;", "&"))
        };
        let mut fields = vec![("csrf".to_owned(), field("csrf").expect("a CSRF field on every form page"))];
        if let Some(r) = field("request") {
            fields.push(("request".into(), r));
        }
        if page.contains("name=\"password\"") {
            fields.push(("username".into(), username.into()));
            fields.push(("password".into(), password.into()));
        } else {
            fields.push(("decision".into(), "approve".into()));
        }
        form = Some(fields);
    }
    panic!("the pages never redirected back to the client");
}

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one test per backend from `async fn name(backend: Backend)`; the calling module must
/// have `Backend` in scope.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await } )*
        }
    };
}
