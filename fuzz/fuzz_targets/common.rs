// Shared by the targets that need a local cloud: one per process, in a
// temporary directory, on a current-thread runtime.
use std::sync::OnceLock;

pub struct Local {
    pub rt: tokio::runtime::Runtime,
    pub cloud: rota_local::LocalCloud,
}

pub fn local() -> &'static Local {
    static LOCAL: OnceLock<Local> = OnceLock::new();
    LOCAL.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = std::env::temp_dir().join(format!("rota-fuzz-{}", std::process::id()));
        let world = rota_local::World::parse(include_str!("../../examples/quickstart/world.hcl")).expect("world");
        let cloud = rt
            .block_on(rota_local::LocalCloud::open(&dir, world))
            .expect("local cloud");
        Local { rt, cloud }
    })
}
