//! What a JSON-RPC body asks for (JSON-RPC 2.0 §4–6, MCP Streamable HTTP): the method of each
//! message and, for `tools/call`, the tool. The body comes from the network, and the bytes
//! classified here are the bytes passed on ([`ClassifiedBody`] owns them), so the scopes checked
//! are those of what the server behind will read. Whatever another JSON parser could read
//! differently (a byte order mark, another encoding, a key twice, a key that differs from
//! `method`, `params` or `name` only in case, which Go's `encoding/json` and Jackson's
//! case-insensitive mode match to the same field) is refused, never guessed at: fail closed.

use std::fmt;

use axum::body::{Body, Bytes};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// One message of a body: what the scope policy looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// A request or notification: the method it invokes and, for `tools/call`, the tool.
    Invocation { method: String, tool: Option<String> },
    /// No `method`: a response to a request the server sent (`result` or `error`).
    Response,
}

/// A body read and understood: its bytes, untouched, and its messages.
#[derive(Debug, Clone)]
pub(crate) struct ClassifiedBody {
    bytes: Bytes,
    messages: Vec<Message>,
}

impl ClassifiedBody {
    pub(crate) fn messages(&self) -> &[Message] {
        &self.messages
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The bytes that were classified, to pass on: nothing else may be.
    pub(crate) fn into_body(self) -> Body {
        Body::from(self.bytes)
    }
}

/// Why a body cannot be classified. The text is safe to show the client: it never quotes the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unclassifiable {
    #[error("the request body is empty; a JSON-RPC message is expected")]
    Empty,
    #[error("the request body starts with a byte order mark; send UTF-8 JSON without one (RFC 8259 §8.1)")]
    ByteOrderMark,
    #[error("the request body is not UTF-8; JSON is exchanged as UTF-8 (RFC 8259 §8.1)")]
    NotUtf8,
    #[error("the request body is not JSON (line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    #[error("an object in the request body has the same key twice")]
    DuplicateKey,
    #[error(
        "a JSON-RPC message (or its params) has a key that differs from method, params or name only in letter case"
    )]
    AmbiguousKey,
    #[error("the request body is neither a JSON-RPC message (an object) nor a batch of them")]
    NotJsonRpc,
    #[error("the JSON-RPC batch is empty")]
    EmptyBatch,
    #[error("a JSON-RPC message's method is not a string")]
    MethodNotString,
    #[error("a tools/call message does not name its tool (params.name, a string)")]
    NoToolName,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads `bytes` as one JSON-RPC message or a batch; every message is classified, or none is.
pub(crate) fn classify(bytes: Bytes) -> Result<ClassifiedBody, Unclassifiable> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Unclassifiable::Empty);
    }
    if bytes.starts_with(BOM) {
        return Err(Unclassifiable::ByteOrderMark);
    }
    // UTF-16 and UTF-32 put NUL bytes beside ASCII, which JSON in UTF-8 never has (control
    // characters in strings are escaped); their byte order marks are not UTF-8 at all.
    if bytes.contains(&0) {
        return Err(Unclassifiable::NotUtf8);
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| Unclassifiable::NotUtf8)?;
    let mut reader = serde_json::Deserializer::from_str(text);
    let value = StrictValue::deserialize(&mut reader).and_then(|v| reader.end().map(|()| v.0)).map_err(|e| {
        if e.is_data() {
            // The visitor accepts every JSON type: a data error is its duplicate key.
            Unclassifiable::DuplicateKey
        } else {
            Unclassifiable::NotJson { line: e.line(), column: e.column() }
        }
    })?;
    let messages = match &value {
        Value::Object(message) => vec![read_message(message)?],
        Value::Array(batch) if batch.is_empty() => return Err(Unclassifiable::EmptyBatch),
        Value::Array(batch) => batch
            .iter()
            .map(|m| m.as_object().ok_or(Unclassifiable::NotJsonRpc).and_then(read_message))
            .collect::<Result<_, _>>()?,
        _ => return Err(Unclassifiable::NotJsonRpc),
    };
    Ok(ClassifiedBody { bytes, messages })
}

fn read_message(message: &Map<String, Value>) -> Result<Message, Unclassifiable> {
    unambiguous(message, &["method", "params"])?;
    let method = match message.get("method") {
        None => return Ok(Message::Response),
        Some(Value::String(method)) => method.clone(),
        Some(_) => return Err(Unclassifiable::MethodNotString),
    };
    let params = message.get("params").and_then(Value::as_object);
    if let Some(params) = params {
        unambiguous(params, &["name"])?;
    }
    let tool = if method == "tools/call" {
        let name = params.and_then(|p| p.get("name")).and_then(Value::as_str).ok_or(Unclassifiable::NoToolName)?;
        Some(name.to_owned())
    } else {
        None
    };
    Ok(Message::Invocation { method, tool })
}

/// No key that a case-insensitive parser would take for one of `names` unless it is that name:
/// Go's `encoding/json` matches `"METHOD"` or `"paramſ"` (long s) to the fields `Method` and
/// `Params`, and the last such key wins.
fn unambiguous(object: &Map<String, Value>, names: &[&str]) -> Result<(), Unclassifiable> {
    let ambiguous = object
        .keys()
        .any(|key| !names.contains(&key.as_str()) && names.iter().any(|name| folded(key).eq(name.chars())));
    if ambiguous { Err(Unclassifiable::AmbiguousKey) } else { Ok(()) }
}

/// Case folding towards ASCII as lenient parsers do it: Go (`ToUpper(ToLower(r))`) and Java's
/// `equalsIgnoreCase` also take ſ (U+017F) for s, ı and İ (U+0131, U+0130) for i, and the Kelvin
/// sign (U+212A) for k.
fn folded(key: &str) -> impl Iterator<Item = char> + '_ {
    key.chars().map(|c| match c {
        '\u{17F}' => 's',
        '\u{131}' | '\u{130}' => 'i',
        '\u{212A}' => 'k',
        c => c.to_ascii_lowercase(),
    })
}

/// A JSON value whose objects never repeat a key (RFC 8259 §4 leaves the meaning of a repeated
/// key to each parser: some keep the first, serde_json and most keep the last).
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            if object.insert(key, value).is_some() {
                return Err(de::Error::custom("a key appears twice in one object"));
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classified(body: &str) -> Result<Vec<Message>, Unclassifiable> {
        classify(Bytes::copy_from_slice(body.as_bytes())).map(|c| c.messages().to_vec())
    }

    fn call(method: &str, tool: Option<&str>) -> Message {
        Message::Invocation { method: method.into(), tool: tool.map(Into::into) }
    }

    #[test]
    fn messages_batches_and_responses() {
        let echo = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
        assert_eq!(classified(echo), Ok(vec![call("tools/call", Some("echo"))]));
        let batch = format!(
            r#" [ {{"jsonrpc":"2.0","method":"notifications/initialized"}}, {echo}, {{"id":7,"result":{{}}}} ] "#
        );
        assert_eq!(
            classified(&batch),
            Ok(vec![call("notifications/initialized", None), call("tools/call", Some("echo")), Message::Response])
        );
        let body = Bytes::from_static(b"{\"method\" : \"ping\"}\n");
        assert_eq!(classify(body.clone()).unwrap().bytes(), &body, "the bytes are kept as they came");
    }

    #[test]
    fn what_another_parser_could_read_differently_is_refused() {
        let echo = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
        assert_eq!(classified(""), Err(Unclassifiable::Empty));
        assert_eq!(classified(" \r\n"), Err(Unclassifiable::Empty));
        assert_eq!(classified(&format!("\u{FEFF}{echo}")), Err(Unclassifiable::ByteOrderMark));
        let utf16: Vec<u8> = echo.encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(classify(Bytes::from(utf16.clone())).unwrap_err(), Unclassifiable::NotUtf8);
        let with_bom = [&[0xFF, 0xFE][..], &utf16].concat();
        assert_eq!(classify(Bytes::from(with_bom)).unwrap_err(), Unclassifiable::NotUtf8);
        assert_eq!(classify(Bytes::from_static(b"{\"method\":\"\xff\"}")).unwrap_err(), Unclassifiable::NotUtf8);
        assert!(matches!(classified("{\"method\":\"tools/list\"} x"), Err(Unclassifiable::NotJson { .. })));
        assert!(matches!(classified("{'method':'tools/list'}"), Err(Unclassifiable::NotJson { .. })));
        assert_eq!(classified(r#"{"method":"tools/list","method":"tools/call"}"#), Err(Unclassifiable::DuplicateKey));
        assert_eq!(
            classified(r#"{"method":"tools/call","params":{"name":"echo","name":"wipe"}}"#),
            Err(Unclassifiable::DuplicateKey)
        );
        assert_eq!(classified(r#"{"method":"tools/list","Method":"tools/call"}"#), Err(Unclassifiable::AmbiguousKey));
        assert_eq!(
            classified(r#"{"method":"tools/call","params":{"name":"echo"},"paramſ":{"name":"wipe"}}"#),
            Err(Unclassifiable::AmbiguousKey)
        );
        assert_eq!(
            classified(r#"{"method":"tools/call","params":{"name":"echo","NAME":"wipe"}}"#),
            Err(Unclassifiable::AmbiguousKey)
        );
        assert_eq!(classified(r#"{"id":1,"METHOD":"tools/call"}"#), Err(Unclassifiable::AmbiguousKey), "alone too");
        assert_eq!(
            classified(r#"{"method":"tools/call","params":{"name":"echo","Arguments":{},"arguments":{}}}"#).unwrap(),
            vec![call("tools/call", Some("echo"))],
            "keys the checks do not read may differ in case"
        );
        assert_eq!(classified("[]"), Err(Unclassifiable::EmptyBatch));
        assert_eq!(classified(&format!("[{echo}, 1]")), Err(Unclassifiable::NotJsonRpc));
        assert_eq!(classified("\"tools/call\""), Err(Unclassifiable::NotJsonRpc));
        assert_eq!(classified(r#"{"method":["tools/call"]}"#), Err(Unclassifiable::MethodNotString));
        assert_eq!(classified(r#"{"method":"tools/call","params":["wipe"]}"#), Err(Unclassifiable::NoToolName));
        assert_eq!(classified(r#"{"method":"tools/call"}"#), Err(Unclassifiable::NoToolName));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(classified(&deep), Err(Unclassifiable::NotJson { .. })), "nesting is bounded");
    }
}

/// Properties over generated bodies: whatever is classified is read the same way by every other
/// parser an upstream might use, and no input makes the classifier panic.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

    use super::*;

    /// JSON kept as written: an object is its pairs in order, repeated keys and all.
    #[derive(Debug, Clone)]
    enum Raw {
        Object(Vec<(String, Raw)>),
        Array(Vec<Raw>),
        Scalar(Value),
    }

    impl<'de> Deserialize<'de> for Raw {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Raw;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("JSON")
                }
                fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
                    Ok(Raw::Scalar(Value::Bool(v)))
                }
                fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
                    Ok(Raw::Scalar(Value::from(v)))
                }
                fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
                    Ok(Raw::Scalar(Value::from(v)))
                }
                fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
                    Ok(Raw::Scalar(Value::from(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
                    Ok(Raw::Scalar(Value::from(v)))
                }
                fn visit_unit<E>(self) -> Result<Raw, E> {
                    Ok(Raw::Scalar(Value::Null))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
                    let mut items = Vec::new();
                    while let Some(item) = seq.next_element()? {
                        items.push(item);
                    }
                    Ok(Raw::Array(items))
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                    let mut pairs = Vec::new();
                    while let Some(pair) = map.next_entry()? {
                        pairs.push(pair);
                    }
                    Ok(Raw::Object(pairs))
                }
            }
            d.deserialize_any(V)
        }
    }

    /// How a parser picks a member: which keys match a field, and which match wins.
    #[derive(Debug, Clone, Copy)]
    enum Reader {
        /// serde_json, JavaScript's `JSON.parse`, Python's `json`: exact names, the last wins.
        LastExact,
        /// Some others: exact names, the first wins.
        FirstExact,
        /// Go's `encoding/json`: names folded with `ToUpper(ToLower(r))`, the last wins.
        GoFolded,
    }

    fn go_fold(s: &str) -> String {
        let simple = |mut it: std::iter::Peekable<std::vec::IntoIter<char>>, c: char| match (it.next(), it.peek()) {
            (Some(one), None) => one,
            _ => c,
        };
        s.chars()
            .map(|c| {
                if c.is_ascii() {
                    return c.to_ascii_uppercase();
                }
                // Go's simple mappings: İ lowers to i (Rust's full mapping adds a combining dot).
                let lower = if c == '\u{130}' {
                    'i'
                } else {
                    simple(c.to_lowercase().collect::<Vec<_>>().into_iter().peekable(), c)
                };
                simple(lower.to_uppercase().collect::<Vec<_>>().into_iter().peekable(), lower)
            })
            .collect()
    }

    fn member<'a>(pairs: &'a [(String, Raw)], name: &str, reader: Reader) -> Option<&'a Raw> {
        let matches = |k: &String| match reader {
            Reader::LastExact | Reader::FirstExact => k == name,
            Reader::GoFolded => go_fold(k) == go_fold(name),
        };
        let mut found = pairs.iter().filter(|(k, _)| matches(k)).map(|(_, v)| v);
        match reader {
            Reader::FirstExact => found.next(),
            Reader::LastExact | Reader::GoFolded => found.next_back(),
        }
    }

    /// What `reader` makes of a message: `None` when it would not take it as one.
    fn read(raw: &Raw, reader: Reader) -> Option<Vec<Message>> {
        let one = |m: &Raw| -> Option<Message> {
            let Raw::Object(pairs) = m else { return None };
            let method = match member(pairs, "method", reader) {
                None => return Some(Message::Response),
                Some(Raw::Scalar(Value::String(s))) => s.clone(),
                Some(_) => return None,
            };
            let tool = match member(pairs, "params", reader) {
                Some(Raw::Object(params)) if method == "tools/call" => match member(params, "name", reader) {
                    Some(Raw::Scalar(Value::String(s))) => Some(s.clone()),
                    _ => return None,
                },
                _ if method == "tools/call" => return None,
                _ => None,
            };
            Some(Message::Invocation { method, tool })
        };
        match raw {
            Raw::Array(batch) => batch.iter().map(one).collect(),
            m => one(m).map(|m| vec![m]),
        }
    }

    /// An upstream that forgives: it drops a UTF-8 byte order mark and decodes UTF-16.
    fn lenient_text(bytes: &[u8]) -> Option<String> {
        let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
        if let Ok(text) = std::str::from_utf8(bytes)
            && !text.contains('\0')
        {
            return Some(text.to_owned());
        }
        let (le, units) = match bytes {
            [0xFF, 0xFE, rest @ ..] => (true, rest),
            [0xFE, 0xFF, rest @ ..] => (false, rest),
            _ => (true, bytes),
        };
        let units: Vec<u16> = units
            .chunks_exact(2)
            .map(|p| if le { u16::from_le_bytes([p[0], p[1]]) } else { u16::from_be_bytes([p[0], p[1]]) })
            .collect();
        String::from_utf16(&units).ok()
    }

    fn key() -> impl Strategy<Value = String> + Clone {
        prop::sample::select(vec![
            "method",
            "METHOD",
            "Method",
            "meThod",
            "params",
            "Params",
            "PARAMS",
            "param\u{17F}",
            "name",
            "Name",
            "NAME",
            "nAME",
            "\u{131}d",
            "jsonrpc",
            "id",
            "arguments",
            "result",
            "error",
            "_meta",
            "x",
        ])
        .prop_map(str::to_owned)
    }

    fn scalar() -> impl Strategy<Value = String> + Clone {
        prop_oneof![
            prop::sample::select(vec!["tools/call", "tools/list", "ping", "echo", "wipe", "2.0"])
                .prop_map(|s| format!("\"{s}\"")),
            any::<i32>().prop_map(|n| n.to_string()),
            Just("null".to_owned()),
            Just("[\"wipe\"]".to_owned()),
        ]
    }

    /// A key as JSON text: quoted plainly, or with its first character as a `\u` escape.
    fn quoted_key() -> impl Strategy<Value = String> + Clone {
        (key(), any::<bool>()).prop_map(|(k, escaped)| {
            let mut chars = k.chars();
            match (escaped, chars.next()) {
                (true, Some(c)) if (c as u32) < 0x10000 => format!("\"\\u{:04x}{}\"", c as u32, chars.as_str()),
                _ => serde_json::to_string(&k).unwrap(),
            }
        })
    }

    /// An object of `wanted` members (each present or not) and up to two more of any key, shuffled.
    fn object(
        wanted: Vec<(&'static str, BoxedStrategy<String>)>,
        values: impl Strategy<Value = String> + Clone,
    ) -> impl Strategy<Value = String> + Clone {
        let wanted: Vec<_> = wanted
            .into_iter()
            .map(|(k, v)| prop::option::weighted(0.8, v).prop_map(move |v| v.map(|v| (format!("\"{k}\""), v))))
            .collect();
        (wanted, prop::collection::vec((quoted_key(), values), 0..3), prop::sample::select(vec!["", " ", "\n\t"]))
            .prop_flat_map(|(wanted, noise, ws)| {
                let pairs: Vec<(String, String)> = wanted.into_iter().flatten().chain(noise).collect();
                (Just(pairs).prop_shuffle(), Just(ws))
            })
            .prop_map(|(pairs, ws)| {
                let pairs: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}{ws}:{ws}{v}")).collect();
                format!("{{{ws}{}{ws}}}", pairs.join(&format!(",{ws}")))
            })
    }

    /// JSON-RPC-like text: a message or a batch of them, keys often repeated or in another case.
    fn message_text() -> impl Strategy<Value = String> {
        let name = prop::sample::select(vec!["echo", "wipe"]).prop_map(|t| format!("\"{t}\"")).boxed();
        let params = object(vec![("name", name), ("arguments", Just("{}".to_owned()).boxed())], scalar());
        let method = prop::sample::select(vec!["tools/call", "tools/list", "ping"]).prop_map(|m| format!("\"{m}\""));
        let message = object(
            vec![
                ("jsonrpc", Just("\"2.0\"".to_owned()).boxed()),
                ("id", any::<u16>().prop_map(|n| n.to_string()).boxed()),
                ("method", method.boxed()),
                ("params", params.clone().boxed()),
            ],
            prop_oneof![3 => scalar(), 1 => params],
        );
        prop_oneof![
            3 => message.clone(),
            1 => prop::collection::vec(message, 0..4).prop_map(|m| format!("[{}]", m.join(","))),
        ]
    }

    /// The text as bytes: mostly UTF-8, sometimes with a BOM or in UTF-16.
    fn encoded(text: String, how: u8) -> Vec<u8> {
        let utf16 = |le: bool| -> Vec<u8> {
            text.encode_utf16().flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() }).collect()
        };
        match how % 8 {
            0 => [BOM, text.as_bytes()].concat(),
            1 => utf16(true),
            2 => [&[0xFF, 0xFE][..], &utf16(true)].concat(),
            3 => [&[0xFE, 0xFF][..], &utf16(false)].concat(),
            _ => text.into_bytes(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = classify(Bytes::from(bytes));
        }

        /// The property the layer relies on: a classified body is passed on byte for byte, and
        /// every parser an upstream might use reads the methods and tools the checks saw.
        #[test]
        fn what_is_classified_is_what_every_parser_reads(text in message_text(), how in any::<u8>()) {
            let bytes = encoded(text, how);
            let Ok(classified) = classify(Bytes::from(bytes.clone())) else { return Ok(()) };
            prop_assert_eq!(classified.bytes().as_ref(), &bytes[..]);
            let text = lenient_text(&bytes).expect("a classified body is text to a lenient reader too");
            let raw: Raw = serde_json::from_str(&text).expect("a classified body is JSON to every reader");
            for reader in [Reader::LastExact, Reader::FirstExact, Reader::GoFolded] {
                let reading = read(&raw, reader);
                prop_assert_eq!(reading.as_deref(), Some(classified.messages()), "{:?} on {}", reader, text);
            }
        }
    }

    #[test]
    fn the_generator_reaches_the_cases_that_matter() {
        // Sanity for the property above: bodies other parsers read differently are generated
        // and refused (as Go's folding, a repeated key and a BOM).
        for body in [
            "{\"method\":\"tools/list\",\"METHOD\":\"tools/call\"}",
            "{\"method\":\"tools/call\",\"params\":{\"name\":\"echo\"},\"param\u{17F}\":{\"name\":\"wipe\"}}",
            "{\"method\":\"tools/list\",\"method\":\"tools/call\"}",
        ] {
            let raw: Raw = serde_json::from_str(body).unwrap();
            let readings: Vec<_> =
                [Reader::LastExact, Reader::FirstExact, Reader::GoFolded].iter().map(|r| read(&raw, *r)).collect();
            assert!(readings.windows(2).any(|w| w[0] != w[1]), "{body}: {readings:?}");
            assert!(classify(Bytes::from(body.to_owned())).is_err(), "{body}");
        }
    }
}
