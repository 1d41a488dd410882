//! An empty proxy-wasm HTTP filter: every request continues untouched.
//! What is left is the cost of having a wasm filter at all (VM entry and
//! exit, context creation and teardown), the floor our filter is held to.
//!
//! Its configuration adds, one by one, the host calls our filter makes on
//! a request, so the benchmark can put a price on each step (the ladder of
//! BENCHMARKS.md) instead of guessing where the filter's fixed cost goes:
//! - `"read_headers":true`: reads the request's header map in
//!   `on_http_request_headers` the way the filter does (one host call, one
//!   buffer) and drops it: the ceiling for any filter that must look at a
//!   request's `Authorization` header or cookies;
//! - `"now":true`: also reads the clock;
//! - `"remove":true`: also removes a request header the request does not
//!   have (a no-op for the request, but a header-map change for Envoy);
//! - `"set":true`: also sets `Authorization` to an 800-byte bearer token,
//!   as ours does for client credentials and sessions: the ceiling of a
//!   filter that must rewrite the request;
//! - `"strip_cookie":true`: also removes the `cookie` header, as ours does
//!   on a session request whose only cookies are its own: with `"set"`,
//!   the ceiling of a filter that turns a session cookie into a token;
//! - `"deny":true` (with `"read_headers"`, as the steps above): after the
//!   other steps, answers the request itself with the 401 ours sends for a
//!   token whose signature fails (the same status, headers and body, a
//!   realm of the same length) instead of letting it through: the ceiling
//!   of a filter that refuses a request;
//! - `"copies":N` (1 to 999): also copies a 64-byte buffer N times by a
//!   length the compiler cannot see, the wasm `memory.copy` that every
//!   variable-length copy in our filter compiles to: whether V8 runs it as
//!   a call into its runtime (perf's "envoy binary") or inline.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root::default()));
}}

#[derive(Default, Clone, Copy)]
struct Steps {
    read_headers: bool,
    now: bool,
    remove: bool,
    set: bool,
    strip_cookie: bool,
    deny: bool,
    by_name: usize,
    copies: usize,
}

#[derive(Default)]
struct Root {
    steps: Steps,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let config = String::from_utf8_lossy(&config);
        let on = |key: &str| config.contains(&format!(r#""{key}":true"#));
        self.steps = Steps {
            read_headers: on("read_headers"),
            now: on("now"),
            remove: on("remove"),
            set: on("set"),
            strip_cookie: on("strip_cookie"),
            deny: on("deny"),
            by_name: (1..=NAMES.len())
                .rev()
                .find(|n| config.contains(&format!(r#""by_name":{n}"#)))
                .unwrap_or(0),
            copies: config
                .split_once(r#""copies":"#)
                .and_then(|(_, n)| n.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
                .filter(|n| (1..1000).contains(n))
                .unwrap_or(0),
        };
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        if self.steps.by_name > 0 {
            Some(Box::new(ByName(self.steps.by_name)))
        } else if self.steps.read_headers {
            Some(Box::new(Ladder(self.steps)))
        } else {
            Some(Box::new(Empty))
        }
    }
}

struct Empty;

impl Context for Empty {}

impl HttpContext for Empty {}

/// The headers `by_name` reads, in order.
const NAMES: [&str; 5] = [":path", ":authority", ":method", "authorization", "cookie"];

struct ByName(usize);

impl Context for ByName {}

impl HttpContext for ByName {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        for name in NAMES.iter().take(self.0) {
            let _ = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name);
        }
        Action::Continue
    }
}

struct Ladder(Steps);

impl Context for Ladder {}

impl HttpContext for Ladder {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        #[link(wasm_import_module = "env")]
        unsafe extern "C" {
            fn proxy_get_header_map_pairs(
                map_type: u32,
                data: *mut *mut u8,
                size: *mut usize,
            ) -> u32;
        }
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        // SAFETY: as in the filter's src/shell/host.rs: the host hands over a
        // buffer it allocated through the SDK's proxy_on_memory_allocate.
        let status = unsafe { proxy_get_header_map_pairs(0, &mut data, &mut size) };
        if status == 0 && !data.is_null() {
            drop(unsafe { Vec::from_raw_parts(data, size, size) });
        }
        if self.0.now {
            let _ = hostcalls::get_current_time();
        }
        if self.0.remove {
            let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, "x-not-sent");
        }
        if self.0.set {
            let token = format!("Bearer {}", "t".repeat(793));
            let _ = hostcalls::set_map_value(
                MapType::HttpRequestHeaders,
                "authorization",
                Some(&token),
            );
        }
        if self.0.strip_cookie {
            let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, "cookie");
        }
        if self.0.copies > 0 {
            let from = [7u8; 64];
            let mut to = [0u8; 64];
            let len = std::hint::black_box(from.len());
            for _ in 0..self.0.copies {
                to[..len].copy_from_slice(std::hint::black_box(&from[..len]));
                std::hint::black_box(&mut to);
            }
        }
        if self.0.deny {
            // src/error.rs's response for TokenError::BadSignature; the
            // realm is the benchmark IdP's authority, 127.0.0.1 and a port.
            let challenge = "Bearer realm=\"127.0.0.1:40000\", error=\"invalid_token\", \
                             error_description=\"invalid signature\"";
            let headers = vec![
                ("content-type", "application/json"),
                ("www-authenticate", challenge),
            ];
            let body = br#"{"message":"Unauthorized"}"#;
            let _ = hostcalls::send_http_response(401, headers, Some(body));
            return Action::Pause;
        }
        Action::Continue
    }
}
