//! The X displays a `screen` node captures: which one a node means, whether
//! it can be reached from this machine, and the size of its screen.
//!
//! Shared by the kind's host check (`runtime check`, before anything starts),
//! the node itself (the same display, the same message) and its device
//! listing (`runtime devices`). x11rb speaks the X protocol in Rust and reads
//! the Xauthority cookie itself, so neither the runtime nor the check links
//! libX11.

use std::fmt;

use x11rb::connection::Connection;

/// Where an X client finds its display when none is given.
pub const DISPLAY_ENV: &str = "DISPLAY";
/// Set in a Wayland session; with no `DISPLAY` beside it there is no
/// Xwayland to capture through.
pub const WAYLAND_ENV: &str = "WAYLAND_DISPLAY";

/// Why no display can be captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisplayError {
    /// Neither the param nor `$DISPLAY` names one.
    NoDisplay,
    /// Only a Wayland session: capture through the desktop portal is not
    /// supported yet.
    WaylandOnly(String),
    /// Not an X display name (`:N`, `:N.S`, `host:N`).
    BadName(String),
    /// The X server cannot be reached or refused the connection.
    Unreachable { display: String, reason: String },
    /// The display has no screen of that number.
    NoSuchScreen { display: String, screens: usize },
}

impl fmt::Display for DisplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisplayError::NoDisplay => write!(
                f,
                "no X display to capture: set the `display` param (e.g. `:0`) or ${DISPLAY_ENV}"
            ),
            DisplayError::WaylandOnly(w) => write!(
                f,
                "only a Wayland session is running (${WAYLAND_ENV}={w}, no ${DISPLAY_ENV}): \
                 Wayland screen capture (desktop portal + PipeWire) is not supported yet; \
                 run an X11 session, or Xwayland and set ${DISPLAY_ENV}"
            ),
            DisplayError::BadName(name) => write!(
                f,
                "`{name}` is not an X display name: use `:N`, `:N.S` or `host:N` (e.g. `:0`)"
            ),
            DisplayError::Unreachable { display, reason } => {
                write!(f, "cannot open X display `{display}`: {reason}")
            }
            DisplayError::NoSuchScreen { display, screens } => {
                write!(
                    f,
                    "X display `{display}` has {screens} screen(s): no such screen"
                )
            }
        }
    }
}

impl std::error::Error for DisplayError {}

/// The display a node captures: `param` when given, else `$DISPLAY`; a
/// Wayland-only session is refused with what to do instead.
pub fn resolve(param: Option<&str>) -> Result<String, DisplayError> {
    let env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    match (param, env(DISPLAY_ENV), env(WAYLAND_ENV)) {
        (Some(p), _, _) => Ok(p.to_string()),
        (None, Some(d), _) => Ok(d),
        (None, None, Some(w)) => Err(DisplayError::WaylandOnly(w)),
        (None, None, None) => Err(DisplayError::NoDisplay),
    }
}

/// Whether `name` is an X display name (nothing is connected to).
pub fn check_name(name: &str) -> Result<(), DisplayError> {
    use x11rb::reexports::x11rb_protocol::parse_display;
    // No file looked at: a rule holds wherever the node runs.
    parse_display::parse_display_with_file_exists_callback(name, |_| false)
        .map(drop)
        .map_err(|_| DisplayError::BadName(name.to_string()))
}

/// One screen of an X display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    /// What x11grab opens: the display with its screen, `:0.0`.
    pub display: String,
    pub width: u32,
    pub height: u32,
    /// Bits per pixel of its root window's depth (24 on most).
    pub depth: u8,
}

/// Connects to `display` and reads the size of the screen it names
/// (screen 0 unless `:N.S`).
pub fn probe(display: &str) -> Result<Screen, DisplayError> {
    Ok(probe_all(display)?.remove(0))
}

/// Every screen of `display`, the one it names first.
pub fn probe_all(display: &str) -> Result<Vec<Screen>, DisplayError> {
    Ok(connect(display)?.0)
}

/// A connection to an X display, kept open while another client of ours
/// connects: a server with no client left resets (Xvfb without `-noreset`
/// does), and one connecting during the reset is refused.
pub struct Session(#[allow(dead_code)] x11rb::rust_connection::RustConnection);

/// [`probe_all`], with the connection kept.
pub fn connect(display: &str) -> Result<(Vec<Screen>, Session), DisplayError> {
    check_name(display)?;
    let unreachable = |reason: String| DisplayError::Unreachable {
        display: display.to_string(),
        reason,
    };
    let (conn, named) = x11rb::connect(Some(display)).map_err(|e| unreachable(e.to_string()))?;
    let roots = &conn.setup().roots;
    if named >= roots.len() {
        return Err(DisplayError::NoSuchScreen {
            display: display.to_string(),
            screens: roots.len(),
        });
    }
    let base = display_without_screen(display);
    let mut screens: Vec<Screen> = roots
        .iter()
        .enumerate()
        .map(|(i, r)| Screen {
            display: format!("{base}.{i}"),
            width: r.width_in_pixels.into(),
            height: r.height_in_pixels.into(),
            depth: r.root_depth,
        })
        .collect();
    screens.swap(0, named);
    Ok((screens, Session(conn)))
}

/// `host:N` of `host:N.S`.
fn display_without_screen(display: &str) -> &str {
    let colon = display.rfind(':').unwrap_or(0);
    match display[colon..].find('.') {
        Some(dot) => &display[..colon + dot],
        None => display,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_without_connecting() {
        for good in [":0", ":1.0", "localhost:10", "host.lan:3.1"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "0", "screen", ":x"] {
            assert!(
                check_name(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("not an X display name"),
                "{bad}"
            );
        }
        assert_eq!(display_without_screen(":1.2"), ":1");
        assert_eq!(display_without_screen("host.lan:1"), "host.lan:1");
        assert_eq!(display_without_screen("host.lan:1.0"), "host.lan:1");
    }

    #[test]
    fn a_display_nobody_serves_is_unreachable() {
        let e = probe(":4093").unwrap_err();
        assert!(matches!(e, DisplayError::Unreachable { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("cannot open X display `:4093`: "),
            "{e}"
        );
    }
}
