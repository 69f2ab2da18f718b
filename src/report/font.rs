//! The font of the plots' text. plotters' `ab_glyph` backend draws text only with fonts
//! registered by the program; oddity ships none and takes a TrueType font from the system at run
//! time: `ODDITY_FONT` if set, else the first of [`CANDIDATES`] that exists.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::style::FontStyle;

use crate::error::{Error, Result};

/// The family name the plots ask for.
pub const FAMILY: &str = "sans-serif";

/// Common locations of a sans-serif TrueType font (Debian/Ubuntu `fonts-dejavu-core`,
/// Fedora, Arch, macOS, Windows).
pub const CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// The font file to use: `ODDITY_FONT`, else the first existing candidate.
pub fn find_font() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("ODDITY_FONT") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::MissingFile { path, what: "the font named by ODDITY_FONT (a .ttf file)".into() })
        };
    }
    CANDIDATES.iter().map(Path::new).find(|p| p.is_file()).map(Path::to_path_buf).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "the report plots need a TrueType font and none was found (looked in {}); install one \
             (Debian/Ubuntu: apt-get install fonts-dejavu-core) or set ODDITY_FONT=/path/to/font.ttf",
            CANDIDATES.join(", ")
        ))
    })
}

/// Registers the font under [`FAMILY`] once per process; later calls return the first result.
pub fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let path = find_font().map_err(|e| e.to_string())?;
            let bytes = std::fs::read(&path).map_err(|e| format!("cannot read font {}: {e}", path.display()))?;
            // plotters keeps registered fonts for the whole process; leaking once is that.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FAMILY, FontStyle::Normal, bytes)
                .map_err(|_| format!("{} is not a TrueType/OpenType font plotters can read", path.display()))
        })
        .clone()
        .map_err(Error::InvalidArgument)
}
