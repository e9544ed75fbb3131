//! Entra ID client-credentials tokens.
