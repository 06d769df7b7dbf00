//! Choosing the burn device: wgpu on a real GPU, the flex CPU backend otherwise.

use burn::tensor::{Device, DeviceKind};

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// wgpu if the adapter is a real GPU, else flex.
    Auto,
    /// burn's flex CPU backend.
    Flex,
    /// wgpu on whatever adapter it finds (lavapipe included: slow, for checks only).
    Wgpu,
}

/// The device in use and a description to report.
#[derive(Clone, Debug)]
pub struct Backend {
    pub device: Device,
    pub description: String,
}

/// Picks the device. `ICONNET_BACKEND=flex|wgpu|auto` overrides `Auto`.
pub fn select(choice: BackendChoice) -> Result<Backend, String> {
    let choice = match (choice, std::env::var("ICONNET_BACKEND").ok().as_deref()) {
        (BackendChoice::Auto, Some("flex")) => BackendChoice::Flex,
        (BackendChoice::Auto, Some("wgpu")) => BackendChoice::Wgpu,
        (c, _) => c,
    };
    let flex = || Backend {
        device: Device::flex(),
        description: "flex (CPU)".into(),
    };
    match choice {
        BackendChoice::Flex => Ok(flex()),
        BackendChoice::Wgpu => wgpu().map(|(b, _)| b),
        // Without a GPU device node there is nothing but a software rasteriser to find: skip the
        // probe (it costs start-up time and prints driver noise).
        BackendChoice::Auto if !gpu_device_node_present() => Ok(Backend {
            description: "flex (CPU); no GPU device node".into(),
            ..flex()
        }),
        BackendChoice::Auto => match wgpu() {
            Ok((backend, true)) => Ok(backend),
            Ok((backend, false)) => Ok(Backend {
                description: format!("flex (CPU); wgpu found only {}", backend.description),
                ..flex()
            }),
            Err(e) => Ok(Backend {
                description: format!("flex (CPU); no wgpu adapter: {e}"),
                ..flex()
            }),
        },
    }
}

/// Whether the OS shows a GPU: DRM render nodes or NVIDIA devices on Linux; elsewhere assume so.
fn gpu_device_node_present() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let render_node = std::fs::read_dir("/dev/dri")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
        })
        .unwrap_or(false);
    render_node || std::path::Path::new("/dev/nvidia0").exists()
}

/// Initialises wgpu; the flag says whether the adapter is a real GPU.
fn wgpu() -> Result<(Backend, bool), String> {
    let attempt = std::panic::catch_unwind(|| {
        Device::wgpu_options()
            .device_kind(DeviceKind::DefaultDevice)
            .init_with_setup()
    })
    .map_err(|_| "wgpu initialisation panicked".to_string())?;
    let (device, setup) = attempt.map_err(|e| format!("wgpu: {e}"))?;
    let info = setup.adapter.get_info();
    let real_gpu = !matches!(info.device_type, burn::tensor::wgpu::wgpu::DeviceType::Cpu);
    let description = format!("wgpu: {} ({:?}, {:?})", info.name, info.device_type, info.backend);
    Ok((Backend { device, description }, real_gpu))
}
