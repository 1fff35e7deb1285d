//! alsa-lib prints its errors straight to stderr (e.g. eight lines of
//! "cannot find card '0'" when probing the default device of a machine
//! without a sound card). Probing is allowed to fail — the node says so in one
//! line — so those messages go to the debug log instead.

use std::ffi::{c_char, c_int, c_void, CStr};

/// `snd_local_error_handler_t`: the last parameter is a `va_list`, passed as a
/// pointer on the ABIs we build for; it is never read.
type LocalHandler =
    unsafe extern "C" fn(*const c_char, c_int, *const c_char, c_int, *const c_char, *mut c_void);

extern "C" {
    // libasound is linked by cpal's ALSA backend.
    fn snd_lib_error_set_local(func: Option<LocalHandler>) -> Option<LocalHandler>;
}

unsafe extern "C" fn to_debug_log(
    file: *const c_char,
    line: c_int,
    function: *const c_char,
    err: c_int,
    fmt: *const c_char,
    _args: *mut c_void,
) {
    let text = |p: *const c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: alsa-lib passes NUL-terminated strings.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    tracing::debug!(
        "ALSA {}:{line} {}: {} (error {err})",
        text(file),
        text(function),
        text(fmt)
    );
}

/// Runs `f` with this thread's alsa-lib messages going to the debug log.
pub fn quiet<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: the handler is thread-local in alsa-lib and restored below.
    let previous = unsafe { snd_lib_error_set_local(Some(to_debug_log)) };
    let out = f();
    // SAFETY: as above.
    unsafe { snd_lib_error_set_local(previous) };
    out
}
