//! Metrics. Names are shared by all workers (Envoy's stats scope); ids are
//! per VM and carry the metric kind in their two low bits, as in Envoy.

use wasmtime::{Linker, Result};

use super::log::ok_or_bad_memory;
use super::memory::{self, Ctx};
use crate::state::HostState;
use crate::types::{MetricType, Status};
use crate::world::Metric;

const KIND_BITS: u32 = 2;

fn kind_of(id: u32) -> Option<MetricType> {
    MetricType::from_abi((id & 0b11) as i32 - 1)
}

/// Runs `f` on the metric behind `id`, or answers `NotFound`.
fn with_metric(c: &Ctx<'_>, id: i32, f: impl FnOnce(MetricType, &mut Metric) -> Status) -> i32 {
    let id = id as u32;
    let state = c.data();
    let (Some(kind), Some(name)) = (kind_of(id), state.metric_names.get(&id)) else {
        return Status::NotFound.code();
    };
    let mut world = state.world.borrow_mut();
    let metric = world.metrics.entry(name.clone()).or_default();
    f(kind, metric).code()
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: Ctx<'_>, kind: i32, name: i32, name_len: i32, id_ptr: i32| -> Result<i32> {
            let Some(kind) = MetricType::from_abi(kind) else {
                return Ok(Status::BadArgument.code());
            };
            let Some(name) = memory::read_str(&mut c, name, name_len)? else {
                return Ok(Status::InvalidMemoryAccess.code());
            };
            let state = c.data_mut();
            state.next_metric_seq += 1;
            let id = (state.next_metric_seq << KIND_BITS) | (kind as u32 + 1);
            state.metric_names.insert(id, name.clone());
            state
                .world
                .borrow_mut()
                .metrics
                .entry(name)
                .or_default()
                .kind = Some(kind);
            Ok(ok_or_bad_memory(memory::write_u32(&mut c, id_ptr, id)?))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |c: Ctx<'_>, id: i32, offset: i64| -> i32 {
            with_metric(&c, id, |kind, m| match kind {
                MetricType::Counter if offset > 0 => {
                    m.value = m.value.saturating_add(offset as u64);
                    Status::Ok
                }
                MetricType::Gauge => {
                    m.value = m.value.saturating_add_signed(offset);
                    Status::Ok
                }
                _ => Status::BadArgument,
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |c: Ctx<'_>, id: i32, value: i64| -> i32 {
            let value = value as u64;
            with_metric(&c, id, |kind, m| {
                match kind {
                    MetricType::Counter => m.value = m.value.saturating_add(value),
                    MetricType::Gauge => m.value = value,
                    MetricType::Histogram => {
                        m.value = value;
                        m.samples.push(value);
                    }
                }
                Status::Ok
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: Ctx<'_>, id: i32, ptr: i32| -> Result<i32> {
            let mut value = 0;
            let status = with_metric(&c, id, |kind, m| match kind {
                MetricType::Histogram => Status::BadArgument,
                _ => {
                    value = m.value;
                    Status::Ok
                }
            });
            if status != Status::Ok.code() {
                return Ok(status);
            }
            Ok(ok_or_bad_memory(memory::write_u64(&mut c, ptr, value)?))
        },
    )?;
    Ok(())
}
