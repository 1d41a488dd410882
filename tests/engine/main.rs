//! The engine driven on the host with several workers sharing one store
//! (`envoy_oidc_testkit::World`): how requests are scheduled around IdP
//! calls within a worker and across workers. Each harness test of a
//! scheduling case over the .wasm has its counterpart here, in
//! milliseconds, plus the cases only several workers can show.

mod budget;
mod fixtures;
mod leases;
mod scheduling;
mod workers;
