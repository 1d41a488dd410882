//! The seam between the sans-IO core and the proxy-wasm shell: what the core
//! decides, and what it asks the shell to fetch from the IdP.

use std::rc::Rc;

/// A reply the filter sends instead of forwarding the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What to do with a request once the core has decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Forward upstream after removing `remove` and then setting `set`;
    /// add `response` headers (e.g. a renewed session cookie) to the
    /// upstream's response.
    Continue {
        set: Vec<(String, String)>,
        remove: Vec<String>,
        response: Vec<(String, String)>,
        /// Filter state for the host's access log (`identity_filter_state`).
        state: Vec<(&'static str, String)>,
    },
    /// Shared: the responses of repeated refusals are built once per
    /// worker (`error::Responses`).
    Respond(Rc<Response>),
}

impl Action {
    /// Adds `headers` to the response, the upstream's or ours (a shared
    /// one is copied first).
    pub fn add_response_headers(&mut self, headers: Vec<(String, String)>) {
        if headers.is_empty() {
            return;
        }
        match self {
            Action::Continue { response, .. } => response.extend(headers),
            Action::Respond(r) => std::rc::Rc::make_mut(r).headers.extend(headers),
        }
    }

    /// Forward the request as it is.
    pub fn pass() -> Action {
        Action::Continue {
            set: Vec::new(),
            remove: Vec::new(),
            response: Vec::new(),
            state: Vec::new(),
        }
    }
}

/// An action plus the one log line that explains it (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub log: Option<String>,
}

/// An HTTP request to the IdP, ready for `dispatch_http_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpRequest {
    pub cluster: String,
    /// Pseudo-headers (`:method`, `:path`, `:authority`) first, then the rest.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u32,
    /// A client assertion still to be signed into the body, when the call
    /// is dispatched.
    pub unsigned: Option<Box<crate::client_auth::Unsigned>>,
}

impl IdpRequest {
    /// A request to an IdP URL through the cluster configured for its
    /// authority, with the pseudo-headers `dispatch_http_call` requires.
    pub fn to(
        cfg: &crate::config::Config,
        endpoint: crate::error::Endpoint,
        method: &str,
        url: &crate::url::Url,
    ) -> Result<IdpRequest, crate::error::IdpError> {
        let cluster =
            cfg.cluster_for(&url.authority)
                .ok_or_else(|| crate::error::IdpError::Unroutable {
                    endpoint,
                    reason: format!(
                        "no cluster for `{}` in idp_clusters and no idp_cluster",
                        url.authority
                    ),
                })?;
        Ok(IdpRequest {
            cluster: cluster.to_string(),
            headers: vec![
                (":method".into(), method.into()),
                (":path".into(), url.path_and_query.clone()),
                (":authority".into(), url.authority.clone()),
                (":scheme".into(), url.scheme.as_str().into()),
                ("accept".into(), "application/json".into()),
            ],
            body: None,
            timeout_ms: cfg.idp_timeout_ms,
            unsigned: None,
        })
    }

    pub fn header(mut self, name: &str, value: String) -> IdpRequest {
        self.headers.push((name.to_string(), value));
        self
    }
}

/// The IdP's answer as the shell received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpReply {
    /// `:status` of the reply; `None` when the host gave no response at all.
    pub status: Option<u16>,
    pub body: Vec<u8>,
    /// The reply's `Retry-After` in seconds, when it gave one as a number
    /// (a throttling IdP's 429 or 503).
    pub retry_after: Option<u64>,
}
