//! `--config FILE.toml` for every command, implemented once: the file's keys are the command's
//! long flag names (`fcdd-sigma` or `fcdd_sigma`), its values become extra arguments before clap
//! parses them, and flags given on the command line win. Every run that has an `--out` folder
//! writes its resolved arguments there as `config.toml` (usable again with `--config`).
//!
//! Values: strings and numbers become `--key value`, `true` becomes `--key`, `false` is left
//! out, arrays become `--key a,b,c` (comma-delimited flags such as `--milestones`). Positional
//! arguments (`oddity predict`'s images) stay on the command line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Command;
use crate::error::{Error, Result};

/// The file name of the resolved configuration in a run's `--out` folder.
pub const RESOLVED_CONFIG_FILE: &str = "config.toml";

/// Removes `--config FILE` (or `--config=FILE`) from `argv` and appends the file's settings that
/// the command line does not already give.
pub fn expand_config_args(argv: Vec<OsString>) -> Result<Vec<OsString>> {
    let mut args = Vec::with_capacity(argv.len());
    let mut config: Option<PathBuf> = None;
    let mut iter = argv.into_iter();
    while let Some(a) = iter.next() {
        let s = a.to_string_lossy();
        if s == "--config" {
            let path = iter
                .next()
                .ok_or_else(|| Error::InvalidArgument("--config needs a file name (a TOML file)".into()))?;
            config = Some(PathBuf::from(path));
        } else if let Some(path) = s.strip_prefix("--config=") {
            config = Some(PathBuf::from(path));
        } else {
            args.push(a);
        }
    }
    let Some(path) = config else { return Ok(args) };
    let table = read_table(&path)?;
    let given: Vec<String> = args
        .iter()
        .filter_map(|a| a.to_str())
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_string())
        .collect();
    for (key, value) in table {
        let flag = key.replace('_', "-");
        if given.contains(&flag) {
            continue;
        }
        let bad = |what: &str| Error::InvalidArgument(format!("{}: key '{key}' {what}", path.display()));
        let text = match &value {
            toml::Value::Boolean(true) => {
                args.push(format!("--{flag}").into());
                continue;
            }
            toml::Value::Boolean(false) => continue,
            toml::Value::Array(items) => items.iter().map(scalar).collect::<Option<Vec<_>>>().ok_or_else(|| bad("must be an array of strings or numbers"))?.join(","),
            v => scalar(v).ok_or_else(|| bad("must be a string, number, boolean or array"))?,
        };
        args.push(format!("--{flag}").into());
        args.push(text.into());
    }
    Ok(args)
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

fn read_table(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    text.parse::<toml::Table>().map_err(|e| {
        Error::InvalidArgument(format!("{} is not valid TOML: {}", path.display(), e.message().trim()))
    })
}

/// The arguments as TOML with the flag names as keys (`None` values left out).
pub fn to_toml(args: &impl Serialize) -> Result<String> {
    let value = toml::Value::try_from(args).map_err(|e| Error::InvalidArgument(format!("cannot write the config: {e}")))?;
    let toml::Value::Table(table) = value else {
        return Err(Error::InvalidArgument("the arguments are not a table".into()));
    };
    let renamed: toml::Table = table.into_iter().map(|(k, v)| (k.replace('_', "-"), v)).collect();
    toml::to_string(&renamed).map_err(|e| Error::InvalidArgument(format!("cannot write the config: {e}")))
}

/// Writes `config.toml` into the command's `--out` folder (commands without one write nothing).
pub fn write_resolved(command: &Command) -> Result<()> {
    let (out, text) = match command {
        Command::Demo(a) => (&a.out, to_toml(a)?),
        Command::Train(a) => (&a.out, to_toml(a)?),
        Command::Predict(a) => (&a.out, to_toml(a)?),
        Command::Report(a) => (&a.out, to_toml(a)?),
        #[allow(unreachable_patterns)]
        _ => return Ok(()),
    };
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let path = out.join(RESOLVED_CONFIG_FILE);
    crate::checkpoint::write_atomically(&path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn config_values_fill_in_flags_the_command_line_does_not_give() {
        let path = std::env::temp_dir().join(format!("oddity-config-{}.toml", std::process::id()));
        std::fs::write(&path, "epochs = 3\nseed = 9\nno_hflip = true\nresume = false\nmilestones = [1, 2]\nclass = \"tex\"\n").unwrap();
        let argv = os(&["oddity", "train", "--seed", "4", "--config", path.to_str().unwrap()]);
        let out: Vec<String> = expand_config_args(argv).unwrap().into_iter().map(|a| a.into_string().unwrap()).collect();
        let joined = out.join(" ");
        assert!(joined.starts_with("oddity train --seed 4"), "{joined}");
        assert!(!joined.contains("--seed 9") && !joined.contains("--resume") && !joined.contains("--config"), "{joined}");
        for want in ["--epochs 3", "--no-hflip", "--milestones 1,2", "--class tex"] {
            assert!(joined.contains(want), "{want} missing: {joined}");
        }
        std::fs::write(&path, "epochs = [").unwrap();
        let err = expand_config_args(os(&["oddity", "--config", path.to_str().unwrap()])).unwrap_err().to_string();
        assert!(err.contains("not valid TOML"), "{err}");
        let _ = std::fs::remove_file(&path);
        assert!(expand_config_args(os(&["oddity", "--config"])).is_err());
    }
}
