//! Finding the ONNX Runtime shared library and the one `ort` environment of the process.
//!
//! `ort` (load-dynamic) can hold one library and one environment per process, so both
//! live in a static that is filled once, under a lock, by the first successful load.
//! `ort::init()` without a path is never called: it panics when nothing is found.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use crate::error::EmbedError;

/// The loaded library and the environment every session is created in.
pub(crate) struct Runtime {
    pub(crate) path: PathBuf,
    pub(crate) env: Environment,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// Serialises first loads: `ort` must see one `init_from` + `build` at a time.
static LOADING: Mutex<()> = Mutex::new(());

/// The library the user named, if any: the setting, then `ORT_DYLIB_PATH`. When one
/// is given it is the only candidate: if the user named a library, silently running
/// a different one would hide their mistake.
fn explicit_path(setting: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = setting {
        return Some(p.to_path_buf());
    }
    std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The process-wide runtime, loading it on first use.
///
/// Search order: `setting` → `ORT_DYLIB_PATH` → the release bundle's `lib/` →
/// `<cache>/ort/onnxruntime/capi/` →
/// the `onnxruntime` package of the `python3` on PATH (`.../onnxruntime/capi/`).
pub(crate) fn runtime(setting: Option<&Path>, cache: &Path) -> Result<&'static Runtime, EmbedError> {
    let explicit = explicit_path(setting);
    if let Some(rt) = RUNTIME.get() {
        return reuse(rt, explicit.as_deref());
    }
    let _guard = LOADING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return reuse(rt, explicit.as_deref());
    }

    if let Some(p) = explicit {
        if !p.is_file() {
            return Err(EmbedError::RuntimeNotFound { searched: vec![p] });
        }
        let env = load(&p)?;
        return Ok(RUNTIME.get_or_init(|| Runtime { path: p, env }));
    }

    // Each folder in turn; python3 is only asked when the bundle and the cache have no
    // library that loads.
    let bundle_dir = crate::bundle_root().map(crate::bundle::runtime_dir);
    let cache_dir = cache.join("ort").join("onnxruntime").join("capi");
    let python_dir = || python_onnxruntime_dir().map(|d| d.join("capi"));
    let dirs = [bundle_dir, Some(cache_dir)].into_iter().chain(std::iter::once_with(python_dir)).flatten();
    let mut searched = Vec::new();
    let mut first_error = None;
    for dir in dirs {
        searched.push(dir.clone());
        for file in libraries_in(&dir) {
            match load(&file) {
                Ok(env) => return Ok(RUNTIME.get_or_init(|| Runtime { path: file, env })),
                // The first failure is the most telling one: it is the preferred library.
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    Err(first_error.unwrap_or(EmbedError::RuntimeNotFound { searched }))
}

/// A later `load` in the same process: fine unless it explicitly names another library.
fn reuse(rt: &'static Runtime, explicit: Option<&Path>) -> Result<&'static Runtime, EmbedError> {
    match explicit {
        Some(p) if !p.is_file() => Err(EmbedError::RuntimeNotFound { searched: vec![p.to_path_buf()] }),
        Some(p) if !same_file(p, &rt.path) => {
            Err(EmbedError::RuntimeConflict { loaded: rt.path.clone(), requested: p.to_path_buf() })
        }
        _ => Ok(rt),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn load(path: &Path) -> Result<Environment, EmbedError> {
    let load_error = |message: String| EmbedError::RuntimeLoad { path: path.to_path_buf(), message };
    let builder = ort::init_from(path).map_err(|e| load_error(e.to_string()))?;
    // Telemetry off: Locus never talks to the network.
    builder.with_name("locus").with_telemetry(false).build().map_err(|e| load_error(e.to_string()))
}

/// The ONNX Runtime libraries in `dir`, newest version first. The PyPI wheel ships
/// only a versioned name (`libonnxruntime.so.1.31.1`), so a plain name is not enough.
fn libraries_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version = library_version(&name)?;
            e.path().is_file().then(|| (version, e.path()))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    found.into_iter().map(|(_, p)| p).collect()
}

/// `Some(version numbers)` when `name` is the main ONNX Runtime library
/// (`libonnxruntime.so`, `libonnxruntime.so.1.31.1`, `libonnxruntime.1.31.1.dylib`), not a provider plug-in.
fn library_version(name: &str) -> Option<Vec<u32>> {
    let numbers = |s: &str| -> Option<Vec<u32>> {
        if s.is_empty() {
            return Some(Vec::new());
        }
        s.split('.').map(|p| p.parse().ok()).collect()
    };
    if let Some(rest) = name.strip_prefix("libonnxruntime.so") {
        return numbers(rest.strip_prefix('.').unwrap_or(rest));
    }
    let rest = name.strip_prefix("libonnxruntime")?.strip_suffix(".dylib")?;
    numbers(rest.strip_prefix('.').unwrap_or(rest))
}

/// The folder of the `onnxruntime` package of the `python3` on PATH, if it has one.
///
/// Finds the package without importing it (no package code runs) in isolated mode (`-I`: the
/// current folder is not on `sys.path`, `PYTHON*` variables are ignored) from `/`, so nothing
/// of the workspace can be picked up and run.
fn python_onnxruntime_dir() -> Option<PathBuf> {
    const FIND: &str = "import importlib.util as u\n\
                        s = u.find_spec('onnxruntime')\n\
                        print(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')";
    let out = Command::new("python3")
        .args(["-I", "-c", FIND])
        .current_dir("/")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?;
    let dir = dir.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names() {
        assert_eq!(library_version("libonnxruntime.so"), Some(vec![]));
        assert_eq!(library_version("libonnxruntime.so.1.31.1"), Some(vec![1, 31, 1]));
        assert_eq!(library_version("libonnxruntime.1.31.1.dylib"), Some(vec![1, 31, 1]));
        assert_eq!(library_version("libonnxruntime_providers_shared.so"), None);
        assert_eq!(library_version("libonnxruntime.so.1.31.1.bak"), None);
        assert_eq!(library_version("onnxruntime_pybind11_state.so"), None);
    }

    #[test]
    fn newest_version_first() {
        let dir = tempfile::tempdir().unwrap();
        for name in
            ["libonnxruntime.so.1.9.0", "libonnxruntime.so.1.31.1", "libonnxruntime_providers_shared.so"]
        {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let names: Vec<_> = libraries_in(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["libonnxruntime.so.1.31.1", "libonnxruntime.so.1.9.0"]);
    }
}
