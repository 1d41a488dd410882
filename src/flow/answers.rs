//! The IdP's answers about an access token (userinfo, introspection): what
//! requests make of one, made once per answer, and their per-worker cache.

use std::cell::{OnceCell, RefCell};
use std::hash::RandomState;
use std::rc::{Rc, Weak};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::slots::Key;
use crate::cache::{BoundedCache, TailKeyed, same_bytes, tail_key};
use crate::error::{Error, TokenError};
use crate::oidc::claims::Claims;
use crate::oidc::jwt::MAX_TOKEN_LEN;

/// An answer's claims, with what the requests that use it read of them
/// beyond the claims: made for the first and kept for the others, which
/// would otherwise each serialize the JSON or join the claims again.
pub(super) struct Answer {
    pub(super) claims: Rc<Claims>,
    /// The JSON in base64, standard and padded, as Kong sends its
    /// `*_user_info_header` and `*_introspection_header`; `None` when it
    /// does not serialize.
    encoded: OnceCell<Option<Rc<str>>>,
    /// `search_user_info`: the claims a token's were joined with these to
    /// (`joined_to`), with the token's claims they were made from. Weak:
    /// the verified-token cache owns those, and while this is held their
    /// allocation is not reused, so an equal pointer is the same claims.
    joined: RefCell<Option<(Weak<Claims>, Rc<Claims>)>>,
}

impl Answer {
    pub(super) fn new(claims: Claims) -> Answer {
        Answer {
            claims: Rc::new(claims),
            encoded: OnceCell::new(),
            joined: RefCell::new(None),
        }
    }

    /// The claims as JSON, in base64.
    pub(super) fn encoded(&self) -> Option<Rc<str>> {
        self.encoded
            .get_or_init(|| {
                let json = serde_json::to_vec(&*self.claims).ok()?;
                Some(STANDARD.encode(json).into())
            })
            .clone()
    }

    /// `token`'s claims and those of these it lacks (the token's own win).
    pub(super) fn joined_to(&self, token: &Rc<Claims>) -> Rc<Claims> {
        let mut joined = self.joined.borrow_mut();
        if let Some((from, claims)) = joined.as_ref()
            && std::ptr::eq(from.as_ptr(), Rc::as_ptr(token))
        {
            return Rc::clone(claims);
        }
        let claims = Rc::new(token.with_missing_from(&self.claims));
        *joined = Some((Rc::downgrade(token), Rc::clone(&claims)));
        claims
    }
}

/// What is known of a token: its answer, or why there is none.
pub(super) type Answered = Result<Rc<Answer>, Error>;

/// Answers by token, per worker. Named by the token's SHA-256, as the IdP
/// call that fetches one is (`IdpCall::Userinfo`, `IdpCall::Introspect`:
/// no two tokens share a name, whatever tokens clients make up); and in
/// front of that by `cache::tail_key`, with the token kept and compared
/// whole on a hit, so that a request whose token was answered before
/// hashes the token's last 64 bytes rather than all of it (SHA-256 of an
/// 800-byte JWT: ~2.4 µs in V8, most of such a request's decision).
pub(super) struct TokenAnswers {
    by_hash: BoundedCache<Key, Answered>,
    recent: TailKeyed<(Rc<str>, Answered)>,
}

impl TokenAnswers {
    pub(super) fn new(capacity: usize) -> TokenAnswers {
        TokenAnswers {
            by_hash: BoundedCache::new(capacity),
            recent: TailKeyed::with_capacity(capacity),
        }
    }

    /// Refuses a token too long to be sent to the IdP and kept: an answer
    /// keeps its token whole, so 60 KiB opaque tokens, each answered (if
    /// only `active: false`), held ~64 KB an entry, ~250 MB a worker at the
    /// default cache size. The cap is a JWT's (`MAX_TOKEN_LEN`).
    pub(super) fn admit(token: &str) -> Result<(), TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        Ok(())
    }

    /// The answer for `token` (with the token as kept), or the name of the
    /// call that would fetch it.
    pub(super) fn get(
        &mut self,
        hasher: &RandomState,
        token: &str,
        now: u64,
    ) -> Result<(Rc<str>, Answered), Key> {
        let tail = tail_key(hasher, token.as_bytes());
        if let Some(((kept, answered), until)) = self.recent.get_until(&tail, now)
            && same_bytes(kept.as_bytes(), token.as_bytes())
        {
            return Ok((Rc::clone(kept), served(answered, until, now)));
        }
        let key: Key = Sha256::digest(token.as_bytes()).into();
        let (answered, until) = self.by_hash.get_until(&key, now).ok_or(key)?;
        let (kept, answered) = (Rc::<str>::from(token), served(answered, until, now));
        // Until the answer's own end: the front never outlives it. A
        // refused token kept whole only up to the refused-token cache's
        // bound, as there: random 16 KiB tokens, each refused once, would
        // otherwise hold 16 KiB an entry (64 MiB a worker at the default
        // size); a longer one is hashed whole on each repeat instead.
        if answered.is_ok() || token.len() <= super::bearer::REFUSED_MAX_LEN {
            self.recent
                .insert(tail, (Rc::clone(&kept), answered.clone()), now, until);
        }
        Ok((kept, answered))
    }

    /// The answer the call named `key` brought, kept until `until`.
    pub(super) fn insert(&mut self, key: Key, answered: Answered, now: u64, until: u64) {
        self.by_hash.insert(key, answered, now, until);
    }
}

/// An answer as served at `now`, kept until `until` (see `Error::served`).
fn served(answered: &Answered, until: u64, now: u64) -> Answered {
    match answered {
        Ok(answer) => Ok(Rc::clone(answer)),
        Err(e) => Err(e.served(until, now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TokenError;

    fn claims(json: &str) -> Claims {
        Claims::from_slice(json.as_bytes()).unwrap()
    }

    #[test]
    fn a_token_is_answered_by_its_whole_bytes() {
        let hasher = RandomState::new();
        let mut answers = TokenAnswers::new(8);
        let token = "a.b.same-tail-0123456789012345678901234567890123456789012345678901234";
        let Err(key) = answers.get(&hasher, token, 10) else {
            panic!("nothing was answered yet")
        };
        assert_eq!(key, <[u8; 32]>::from(Sha256::digest(token.as_bytes())));
        answers.insert(
            key,
            Ok(Rc::new(Answer::new(claims(r#"{"sub":"a"}"#)))),
            10,
            20,
        );
        for _ in 0..2 {
            // The second from the front (`recent`).
            let (kept, answered) = answers.get(&hasher, token, 11).unwrap();
            assert_eq!(&*kept, token);
            assert_eq!(answered.unwrap().claims.get("sub").unwrap(), "a");
        }
        // Another token with the same last 64 bytes: its own name, no answer.
        let other = format!("x{token}");
        assert_eq!(
            tail_key(&hasher, other.as_bytes()),
            tail_key(&hasher, token.as_bytes())
        );
        assert!(answers.get(&hasher, &other, 11).is_err());
        // An answer ends when it does, in front too.
        assert!(answers.get(&hasher, token, 20).is_err());
        // A refusal is an answer too.
        answers.insert(key, Err(TokenError::Rejected.into()), 20, 30);
        let (_, answered) = answers.get(&hasher, token, 21).unwrap();
        assert!(matches!(answered, Err(Error::Token(TokenError::Rejected))));
    }

    #[test]
    fn a_long_refused_token_is_not_kept_whole() {
        let hasher = RandomState::new();
        let mut answers = TokenAnswers::new(8);
        for (len, kept) in [(1024, true), (16 * 1024, false)] {
            let token = format!("{}{len}", "t".repeat(len));
            let Err(key) = answers.get(&hasher, &token, 10) else {
                panic!("nothing was answered yet")
            };
            answers.insert(key, Err(TokenError::Rejected.into()), 10, 40);
            // Still refused from the hash cache, long or not.
            for _ in 0..2 {
                let (_, answered) = answers.get(&hasher, &token, 11).unwrap();
                assert!(answered.is_err());
            }
            let tail = tail_key(&hasher, token.as_bytes());
            assert_eq!(answers.recent.get(&tail, 11).is_some(), kept, "{len} bytes");
        }
    }

    #[test]
    fn the_join_is_made_once_per_token_claims() {
        let answer = Answer::new(claims(r#"{"sub":"u","groups":["g"],"email":"e"}"#));
        let token = Rc::new(claims(r#"{"sub":"t","iss":"i"}"#));
        let joined = answer.joined_to(&token);
        assert_eq!(joined.get("sub").unwrap(), "t");
        assert_eq!(joined.get("groups").unwrap()[0], "g");
        assert!(Rc::ptr_eq(&joined, &answer.joined_to(&token)));
        // Other claims (an equal copy too): joined anew.
        let copy = Rc::new(claims(r#"{"sub":"t","iss":"i"}"#));
        let again = answer.joined_to(&copy);
        assert!(!Rc::ptr_eq(&joined, &again));
        assert_eq!(*joined, *again);
        let encoded = answer.encoded().unwrap();
        let json = STANDARD.decode(&*encoded).unwrap();
        assert_eq!(Claims::from_slice(&json).unwrap(), *answer.claims);
        assert!(Rc::ptr_eq(&encoded, &answer.encoded().unwrap()));
    }
}
