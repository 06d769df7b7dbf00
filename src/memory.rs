//! Allocator settings for a process that allocates and frees multi-megabyte buffers on every
//! analysis.
//!
//! Analysing 30 s of PCG creates tens of MB of short-lived tensors and spectra. glibc serves
//! large blocks with fresh mappings and hands freed heap back to the kernel, so every analysis
//! paid for the same pages again: 4.8 ms of system time per call, measured with
//! `/usr/bin/time` over 200 analyses. Raising both thresholds keeps the pages for reuse, at
//! the cost of the process holding on to up to 256 MB of freed heap.

/// Keep freed large blocks for reuse. Call once, early; the CLI, the app and the benchmarks do.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning parameters, under glibc's own arena lock,
    // so other threads may be allocating; a value it does not accept is rejected, not applied.
    unsafe {
        // 32 MB is glibc's largest mmap threshold on 64-bit targets.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}
