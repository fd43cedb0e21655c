//! The identifier rule shared by device ids, product names and hardware models (CONTRACT
//! §4): 1–64 characters of `[A-Za-z0-9._-]`, starting with a letter or digit.

/// The longest identifier accepted.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("is {0} characters long; the limit is {MAX_ID_LEN}")]
    TooLong(usize),
    #[error("must start with a letter or digit")]
    BadStart,
    #[error("contains {0:?}; only letters, digits, '.', '_' and '-' are allowed")]
    BadChar(char),
}

/// Checks the identifier rule.
pub fn check(s: &str) -> Result<(), IdError> {
    let len = s.chars().count();
    if len == 0 {
        return Err(IdError::Empty);
    }
    if len > MAX_ID_LEN {
        return Err(IdError::TooLong(len));
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(IdError::BadChar(c));
    }
    if !s.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(IdError::BadStart);
    }
    Ok(())
}
