//! An empty proxy-wasm HTTP filter: every request continues untouched.
//! What is left is the cost of having a wasm filter at all (VM entry and
//! exit, context creation and teardown), the floor our filter is held to.
//!
//! Configured with `{"read_headers": true}` it also reads the request's
//! header map in `on_http_request_headers`, the way the filter does (one
//! host call, one buffer), and drops it: the ceiling for any filter that
//! must look at a request's `Authorization` header or cookies.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root { read_headers: false }));
}}

struct Root {
    read_headers: bool,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = proxy_wasm::hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        self.read_headers = String::from_utf8_lossy(&config).contains(r#""read_headers":true"#);
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        if self.read_headers {
            Some(Box::new(ReadHeaders))
        } else {
            Some(Box::new(Empty))
        }
    }
}

struct Empty;

impl Context for Empty {}

impl HttpContext for Empty {}

struct ReadHeaders;

impl Context for ReadHeaders {}

impl HttpContext for ReadHeaders {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        #[link(wasm_import_module = "env")]
        unsafe extern "C" {
            fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
        }
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        // SAFETY: as in the filter's src/shell/host.rs: the host hands over a
        // buffer it allocated through the SDK's proxy_on_memory_allocate.
        let status = unsafe { proxy_get_header_map_pairs(0, &mut data, &mut size) };
        if status == 0 && !data.is_null() {
            drop(unsafe { Vec::from_raw_parts(data, size, size) });
        }
        Action::Continue
    }
}
