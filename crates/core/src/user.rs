//! People who sign in and delegate to agents. Passwords are kept only as argon2id PHC strings.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    /// An argon2id PHC string (`$argon2id$v=19$…`).
    pub password_hash: String,
    pub email: Option<String>,
    pub disabled: bool,
}
