//! Where the agent keeps what it obtained: client registrations per issuer (MCP: credentials are
//! keyed by issuer) and tokens per issuer + resource + client. In memory, or in one JSON file
//! written atomically with mode 0600.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::client::ClientIdentity;
use crate::error::AgentError;
use crate::grant::TokenSet;

/// Identifies cached tokens.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TokenKey {
    pub issuer: String,
    pub resource: String,
    pub client_id: String,
}

impl TokenKey {
    fn encode(&self) -> String {
        format!("{} {} {}", self.issuer, self.resource, self.client_id)
    }

    fn decode(s: &str) -> Option<Self> {
        let mut parts = s.splitn(3, ' ');
        Some(Self { issuer: parts.next()?.into(), resource: parts.next()?.into(), client_id: parts.next()?.into() })
    }
}

/// Everything stored, as one document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Contents {
    /// Dynamically registered clients, by issuer.
    #[serde(default)]
    pub clients: BTreeMap<String, ClientIdentity>,
    /// Tokens by "issuer resource client_id".
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenSet>,
}

/// Storage for registrations and tokens.
pub trait CredentialStore: Send + Sync {
    fn load(&self) -> Result<Contents, AgentError>;
    fn save(&self, contents: &Contents) -> Result<(), AgentError>;
}

/// Helpers over any store, read-modify-write under the store's own lock.
pub(crate) struct Store {
    inner: Box<dyn CredentialStore>,
    lock: Mutex<()>,
}

impl Store {
    pub fn new(inner: Box<dyn CredentialStore>) -> Self {
        Self { inner, lock: Mutex::new(()) }
    }

    fn update<T>(&self, f: impl FnOnce(&mut Contents) -> T) -> Result<T, AgentError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut contents = self.inner.load()?;
        let out = f(&mut contents);
        self.inner.save(&contents)?;
        Ok(out)
    }

    pub fn client(&self, issuer: &str) -> Result<Option<ClientIdentity>, AgentError> {
        Ok(self.inner.load()?.clients.get(issuer).cloned())
    }

    pub fn put_client(&self, issuer: &str, client: &ClientIdentity) -> Result<(), AgentError> {
        self.update(|c| {
            c.clients.insert(issuer.to_owned(), client.clone());
        })
    }

    pub fn forget_client(&self, issuer: &str) -> Result<(), AgentError> {
        self.update(|c| {
            c.clients.remove(issuer);
        })
    }

    pub fn tokens(&self, key: &TokenKey) -> Result<Option<TokenSet>, AgentError> {
        Ok(self.inner.load()?.tokens.get(&key.encode()).cloned())
    }

    pub fn put_tokens(&self, key: &TokenKey, tokens: &TokenSet) -> Result<(), AgentError> {
        self.update(|c| {
            c.tokens.insert(key.encode(), tokens.clone());
        })
    }

    /// Removes the tokens of every key `matches` accepts; returns what was removed.
    pub fn remove_tokens(&self, matches: impl Fn(&TokenKey) -> bool) -> Result<Vec<(TokenKey, TokenSet)>, AgentError> {
        self.update(|c| {
            let doomed: Vec<String> =
                c.tokens.keys().filter(|k| TokenKey::decode(k).is_some_and(|k| matches(&k))).cloned().collect();
            doomed
                .into_iter()
                .filter_map(|k| c.tokens.remove(&k).map(|t| (TokenKey::decode(&k).expect("decoded above"), t)))
                .collect()
        })
    }

    pub fn all_tokens(&self) -> Result<Vec<(TokenKey, TokenSet)>, AgentError> {
        Ok(self.inner.load()?.tokens.into_iter().filter_map(|(k, t)| Some((TokenKey::decode(&k)?, t))).collect())
    }
}

/// Keeps everything in memory, for one process.
#[derive(Debug, Default)]
pub struct MemoryStore(Mutex<Contents>);

impl CredentialStore for MemoryStore {
    fn load(&self) -> Result<Contents, AgentError> {
        Ok(self.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
    fn save(&self, contents: &Contents) -> Result<(), AgentError> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = contents.clone();
        Ok(())
    }
}

/// One JSON file, readable by its owner only (0600), replaced atomically on every write so a
/// crash leaves either the old or the new contents.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `$MANDATE_AGENT_STORE`, else `$XDG_STATE_HOME/mandate/agent.json`, else
    /// `~/.local/state/mandate/agent.json`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("MANDATE_AGENT_STORE") {
            return Some(PathBuf::from(p));
        }
        let state = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")))?;
        Some(state.join("mandate").join("agent.json"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, reason: impl std::fmt::Display) -> AgentError {
        AgentError::Store { path: self.path.display().to_string(), reason: reason.to_string() }
    }
}

impl CredentialStore for FileStore {
    fn load(&self) -> Result<Contents, AgentError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.error(format!("not a token cache: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Contents::default()),
            Err(e) => Err(self.error(e)),
        }
    }

    fn save(&self, contents: &Contents) -> Result<(), AgentError> {
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        create_private_dir(dir).map_err(|e| self.error(e))?;
        // tempfile creates the file with mode 0600 in the same directory, then renames over.
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| self.error(e))?;
        let json = serde_json::to_vec_pretty(contents).map_err(|e| self.error(e))?;
        file.write_all(&json).map_err(|e| self.error(e))?;
        file.as_file().sync_all().map_err(|e| self.error(e))?;
        file.persist(&self.path).map_err(|e| self.error(e.error))?;
        Ok(())
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Source;

    fn tokens(access: &str) -> TokenSet {
        TokenSet {
            access_token: access.into(),
            token_type: "Bearer".into(),
            refresh_token: Some("r".into()),
            expires_at: Some(10),
            scope: Some("a b".into()),
            issued_token_type: None,
        }
    }

    #[test]
    fn file_store_round_trips_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/agent.json");
        let store = Store::new(Box::new(FileStore::new(&path)));
        let key = TokenKey {
            issuer: "https://as.example".into(),
            resource: "https://rs.example/mcp".into(),
            client_id: "c 1".into(),
        };
        assert!(store.tokens(&key).unwrap().is_none(), "a missing file is an empty store");
        store.put_tokens(&key, &tokens("at-1")).unwrap();
        let client = ClientIdentity {
            client_id: "dyn".into(),
            client_secret: Some("s".into()),
            token_endpoint_auth_method: "client_secret_basic".into(),
            source: Source::Dynamic,
            redirect_uri: Some("http://127.0.0.1:1/callback".into()),
            key: None,
        };
        store.put_client("https://as.example", &client).unwrap();

        let reopened = Store::new(Box::new(FileStore::new(&path)));
        assert_eq!(reopened.tokens(&key).unwrap().unwrap().access_token, "at-1");
        assert_eq!(reopened.client("https://as.example").unwrap().unwrap().client_id, "dyn");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let removed = reopened.remove_tokens(|k| k.issuer == "https://as.example").unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].0, key, "a client_id with a space survives the key encoding");
        assert!(reopened.all_tokens().unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.json");
        std::fs::write(&path, b"{not json").unwrap();
        let err = FileStore::new(&path).load().unwrap_err();
        assert!(err.to_string().contains("not a token cache"), "{err}");
    }
}
