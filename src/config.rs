//! Configuration files (`--config FILE`): settings a gateway keeps between
//! runs. Flags given on the command line win over the file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use xborder::decode::{Decapsulation, TunnelPorts};
use xborder::intel::{IntelError, IntelSources};

use crate::cli::{AnalysisArgs, IntelArgs, TunnelLayerArg};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    intel: IntelConfig,
    #[serde(default)]
    tunnels: TunnelConfig,
}

/// `[tunnels]`: what `--tunnels` and the `--*-port` flags set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TunnelConfig {
    decode: Option<TunnelLayerArg>,
    vxlan_ports: Option<Vec<u16>>,
    geneve_ports: Option<Vec<u16>>,
    gtp_u_ports: Option<Vec<u16>>,
    teredo_ports: Option<Vec<u16>>,
}

/// The config file named by `--config`, if any.
fn read_config(args: &IntelArgs) -> Result<Option<ConfigFile>, IntelError> {
    let Some(path) = &args.config else { return Ok(None) };
    let text =
        xborder::files::read_text_limited(path, "configuration file", xborder::files::CONFIG_LIMIT)
            .map_err(|e| IntelError::Io { path: path.clone(), source: e })?;
    toml::from_str(&text).map(Some).map_err(|e| IntelError::toml(path, &text, e))
}

/// Which tunnels are decoded, from the flags and the config file's
/// `[tunnels]`: a flag wins over the file, a port list replaces the
/// default list of its kind, and a list of only `0` (or an empty list in
/// the file) turns that kind off.
pub fn tunnel_settings(a: &AnalysisArgs) -> Result<Decapsulation, IntelError> {
    let file = read_config(&a.intel)?.map(|c| c.tunnels).unwrap_or_default();
    let defaults = TunnelPorts::default();
    let pick = |flag: &[u16], file: &Option<Vec<u16>>, default: Vec<u16>| -> Vec<u16> {
        let ports = if !flag.is_empty() { flag.to_vec() } else { file.clone().unwrap_or(default) };
        ports.into_iter().filter(|&p| p != 0).collect()
    };
    Ok(Decapsulation {
        inner: a.tunnels.or(file.decode).unwrap_or(TunnelLayerArg::Inner) == TunnelLayerArg::Inner,
        ports: TunnelPorts {
            vxlan: pick(&a.vxlan_ports, &file.vxlan_ports, defaults.vxlan),
            geneve: pick(&a.geneve_ports, &file.geneve_ports, defaults.geneve),
            gtp_u: pick(&a.gtp_u_ports, &file.gtp_u_ports, defaults.gtp_u),
            teredo: pick(&a.teredo_ports, &file.teredo_ports, defaults.teredo),
        },
    })
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
    let file = match (read_config(args)?, &args.config) {
        (Some(parsed), Some(path)) => {
            let c = parsed.intel;
            IntelConfig {
                geoip_country: c.geoip_country.map(|p| relative_to(path, p)),
                geoip_asn: c.geoip_asn.map(|p| relative_to(path, p)),
                overlays: c.overlays.into_iter().map(|p| relative_to(path, p)).collect(),
                data_dir: c.data_dir.map(|p| relative_to(path, p)),
            }
        }
        _ => IntelConfig::default(),
    };
    Ok(IntelSources {
        country_db: args.geoip_country.clone().or(file.geoip_country),
        asn_db: args.geoip_asn.clone().or(file.geoip_asn),
        data_dir: args.data_dir.clone().or(file.data_dir),
        overlays: if args.overlay.is_empty() { file.overlays } else { args.overlay.clone() },
        spare_core: false,
    })
}
