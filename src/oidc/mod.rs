//! OpenID Connect protocol pieces, each a pure function of its input:
//! discovery documents, JWK sets, JWS compact tokens and their claims.

pub mod claims;
pub mod discovery;
pub mod jwks;
pub mod jwt;
pub mod pkce;
pub mod provider;
pub mod rsa;
pub mod token;
