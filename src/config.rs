//! Configuration files (`--config FILE`): settings a gateway keeps between
//! runs. Flags given on the command line win over the file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use xborder::intel::{IntelError, IntelSources};

use crate::cli::IntelArgs;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    intel: IntelConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntelConfig {
    geoip_country: Option<PathBuf>,
    geoip_asn: Option<PathBuf>,
    #[serde(default)]
    overlays: Vec<PathBuf>,
    data_dir: Option<PathBuf>,
}

/// Paths in a config file are relative to the file.
fn relative_to(base: &Path, p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else {
        base.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// The intelligence sources from the flags and the config file.
pub fn intel_sources(args: &IntelArgs) -> Result<IntelSources, IntelError> {
    let file = match &args.config {
        Some(path) => {
            let text = xborder::files::read_text_limited(
                path,
                "configuration file",
                xborder::files::CONFIG_LIMIT,
            )
            .map_err(|e| IntelError::Io { path: path.clone(), source: e })?;
            let parsed: ConfigFile =
                toml::from_str(&text).map_err(|e| IntelError::toml(path, &text, e))?;
            let c = parsed.intel;
            IntelConfig {
                geoip_country: c.geoip_country.map(|p| relative_to(path, p)),
                geoip_asn: c.geoip_asn.map(|p| relative_to(path, p)),
                overlays: c.overlays.into_iter().map(|p| relative_to(path, p)).collect(),
                data_dir: c.data_dir.map(|p| relative_to(path, p)),
            }
        }
        None => IntelConfig::default(),
    };
    Ok(IntelSources {
        country_db: args.geoip_country.clone().or(file.geoip_country),
        asn_db: args.geoip_asn.clone().or(file.geoip_asn),
        data_dir: args.data_dir.clone().or(file.data_dir),
        overlays: if args.overlay.is_empty() { file.overlays } else { args.overlay.clone() },
    })
}
