//! A guest component on raw wasmtime, for the benches' baselines: WASI, the
//! fuelhost imports defined as traps (the guests measured never call
//! them), the metering a configuration asks for, and `run` called through
//! the component ABI.

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Which of wasmtime's meters are on, and the instance allocator.
#[derive(Clone, Copy)]
pub struct RawMetering {
    pub fuel: bool,
    pub epoch: bool,
    pub pooling: bool,
}

pub struct Ctx {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The guest on raw wasmtime with `metering`: WASI, and the fuelhost
/// imports as traps (the kernels never call them).
pub struct Raw {
    engine: Engine,
    pre: wasmtime::component::InstancePre<Ctx>,
    metering: RawMetering,
}

impl Raw {
    pub fn new(bytes: &[u8], metering: RawMetering) -> Raw {
        let mut config = Config::new();
        config.consume_fuel(metering.fuel).epoch_interruption(metering.epoch);
        if metering.pooling {
            config.allocation_strategy(InstanceAllocationStrategy::pooling());
        }
        Raw::on(Engine::new(&config).unwrap(), bytes, metering)
    }

    /// The guest on an engine configured elsewhere (fuelhost's own, say);
    /// `metering` says which meters that engine compiled in.
    #[allow(dead_code)] // not every bench builds its own engine
    pub fn on(engine: Engine, bytes: &[u8], metering: RawMetering) -> Raw {
        let component = Component::new(&engine, bytes).unwrap();
        let mut linker = Linker::<Ctx>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        trap_fuelhost_imports(&engine, &component, &mut linker);
        let pre = linker.instantiate_pre(&component).unwrap();
        Raw { engine, pre, metering }
    }

    pub fn run(&self, command: &str) -> Vec<u8> {
        let ctx = Ctx { wasi: WasiCtx::builder().build(), table: ResourceTable::new() };
        let mut store = Store::new(&self.engine, ctx);
        if self.metering.fuel {
            store.set_fuel(u64::MAX / 2).unwrap();
        }
        if self.metering.epoch {
            store.set_epoch_deadline(u64::MAX / 2);
        }
        let instance = self.pre.instantiate(&mut store).unwrap();
        // Typed, as fuelhost's bindings call it: the dynamic `Val` API
        // would move a large input one boxed byte at a time.
        let run = instance
            .get_typed_func::<(&[u8],), (Result<Vec<u8>, RunError>,)>(&mut store, "run")
            .expect("the artifact exports `run`");
        match run.call(&mut store, (command.as_bytes(),)).unwrap().0 {
            Ok(output) => output,
            Err(e) => panic!("the kernel failed: {e:?}"),
        }
    }
}

/// The WIT `run-error` variant (`wit/types.wit`).
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lift, Debug)]
#[component(variant)]
#[allow(dead_code)] // read through `Debug` when a kernel fails
pub enum RunError {
    #[component(name = "invalid-input")]
    InvalidInput(String),
    #[component(name = "denied")]
    Denied(String),
    #[component(name = "failed")]
    Failed(String),
}

/// Define every function of the guest's `fuelhost:host/*` imports as a
/// trap. (`define_unknown_imports_as_traps` would also shadow WASI
/// interfaces the linker serves under an older patch version.)
fn trap_fuelhost_imports(engine: &Engine, component: &Component, linker: &mut Linker<Ctx>) {
    use wasmtime::component::types::ComponentItem;
    for (name, item) in component.component_type().imports(engine) {
        let (true, ComponentItem::ComponentInstance(instance)) = (name.starts_with("fuelhost:host/"), item.ty) else {
            continue;
        };
        let mut inst = linker.instance(name).unwrap();
        for (func, item) in instance.exports(engine) {
            if let ComponentItem::ComponentFunc(_) = item.ty {
                inst.func_new(func, |_, _, _, _| Err(wasmtime::format_err!("not available in this benchmark")))
                    .unwrap();
            }
        }
    }
}
