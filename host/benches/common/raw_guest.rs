//! A guest component on raw wasmtime, for the benches' baselines: WASI, the
//! fuelhost imports defined as traps (the guests measured never call
//! them), the metering a configuration asks for, and `run` called through
//! the component ABI.

use wasmtime::component::{Component, Linker, ResourceTable, Val};
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
        let engine = Engine::new(&config).unwrap();
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
        let run = instance.get_func(&mut store, "run").expect("the artifact exports `run`");
        let input = Val::List(command.bytes().map(Val::U8).collect());
        let mut out = [Val::Bool(false)];
        run.call(&mut store, &[input], &mut out).unwrap();
        match &out[0] {
            Val::Result(Ok(Some(v))) => match v.as_ref() {
                Val::List(bytes) => bytes.iter().map(|b| if let Val::U8(b) = b { *b } else { 0 }).collect(),
                other => panic!("unexpected output {other:?}"),
            },
            other => panic!("the kernel failed: {other:?}"),
        }
    }
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
