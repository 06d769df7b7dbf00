//! Crash-safe WAV recording: 32-bit float mono, header sizes rewritten at every flush, so a
//! crash, a kill or a lost device leaves a valid file holding every sample up to the last flush.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes before the samples: RIFF header, `fmt ` chunk (IEEE float, 18 bytes), `data` header.
const HEADER_LEN: u64 = 12 + 8 + 18 + 8;

pub struct WavRecorder {
    path: PathBuf,
    file: BufWriter<File>,
    rate: u32,
    samples: u64,
    since_sync: u64,
}

impl WavRecorder {
    /// Creates (truncates) `path` for mono float samples at `rate` Hz.
    pub fn create(path: &Path, rate: u32) -> Result<Self, String> {
        let file = File::create(path).map_err(|e| format!("{}: cannot record: {e}", path.display()))?;
        let mut r = Self {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(1 << 16, file),
            rate,
            samples: 0,
            since_sync: 0,
        };
        r.write_header().map_err(|e| r.error(e))?;
        r.file.flush().map_err(|e| r.error(e))?;
        Ok(r)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn samples_written(&self) -> u64 {
        self.samples
    }

    fn error(&self, e: std::io::Error) -> String {
        format!("{}: recording failed: {e}", self.path.display())
    }

    fn write_header(&mut self) -> std::io::Result<()> {
        let data_bytes = (self.samples * 4).min(u32::MAX as u64 - HEADER_LEN) as u32;
        let f = &mut self.file;
        f.write_all(b"RIFF")?;
        f.write_all(&(data_bytes + HEADER_LEN as u32 - 8).to_le_bytes())?;
        f.write_all(b"WAVEfmt ")?;
        f.write_all(&18u32.to_le_bytes())?;
        f.write_all(&3u16.to_le_bytes())?; // IEEE float
        f.write_all(&1u16.to_le_bytes())?;
        f.write_all(&self.rate.to_le_bytes())?;
        f.write_all(&(self.rate * 4).to_le_bytes())?;
        f.write_all(&4u16.to_le_bytes())?;
        f.write_all(&32u16.to_le_bytes())?;
        f.write_all(&0u16.to_le_bytes())?;
        f.write_all(b"data")?;
        f.write_all(&data_bytes.to_le_bytes())
    }

    /// Appends samples (buffered; call [`Self::flush`] to make them durable).
    pub fn write(&mut self, samples: &[f32]) -> Result<(), String> {
        for s in samples {
            self.file.write_all(&s.to_le_bytes()).map_err(|e| self.error(e))?;
        }
        self.samples += samples.len() as u64;
        self.since_sync += samples.len() as u64;
        Ok(())
    }

    /// Writes buffered samples, rewrites the header sizes, and every few seconds asks the OS to
    /// put the data on disk.
    pub fn flush(&mut self) -> Result<(), String> {
        let result = (|| -> std::io::Result<()> {
            self.file.flush()?;
            self.file.seek(SeekFrom::Start(0))?;
            self.write_header()?;
            self.file.seek(SeekFrom::End(0))?;
            self.file.flush()?;
            if self.since_sync >= 5 * self.rate as u64 {
                self.file.get_ref().sync_data()?;
                self.since_sync = 0;
            }
            Ok(())
        })();
        result.map_err(|e| self.error(e))
    }

    /// Flushes and syncs; the file is complete.
    pub fn finish(mut self) -> Result<PathBuf, String> {
        self.flush()?;
        self.file.get_ref().sync_all().map_err(|e| self.error(e))?;
        Ok(self.path.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flushed_but_unfinished_recording_loads_with_every_sample() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.wav");
        let samples: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
        let mut r = WavRecorder::create(&path, 8000).unwrap();
        r.write(&samples[..600]).unwrap();
        r.flush().unwrap();
        r.write(&samples[600..]).unwrap();
        // Dropped without finish(): as if the process died after the first flush... except that
        // BufWriter writes its buffer on drop; forget it to model a crash.
        std::mem::forget(r);
        let decoded = crate::audio::load(&path).unwrap();
        assert_eq!(decoded.sample_rate, 8000);
        assert!(decoded.samples.len() >= 600);
        assert_eq!(&decoded.samples[..600], &samples[..600]);
    }

    #[test]
    fn finished_recording_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.wav");
        let samples: Vec<f32> = (0..4321).map(|i| ((i * 37) % 200) as f32 / 100.0 - 1.0).collect();
        let mut r = WavRecorder::create(&path, 16000).unwrap();
        for chunk in samples.chunks(100) {
            r.write(chunk).unwrap();
            r.flush().unwrap();
        }
        r.finish().unwrap();
        let decoded = crate::audio::load(&path).unwrap();
        assert_eq!(decoded.samples, samples);
        assert!(decoded.warnings.is_empty(), "{:?}", decoded.warnings);
    }
}
