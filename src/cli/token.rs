//! Credentials for callers: `zava-mcp token` (a development bearer token for `serve --identity jwt` without an
//! identity provider) and `zava-mcp api-key` (a static key for a machine client, and the entry to store).

use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;

use crate::auth::dev::{DevIdentity, DevKey};
use crate::auth::scopes::{PRODUCTS_READ, SALES_READ, Scope};

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The store manager's UUID, or several comma-separated (a regional manager); store names work too
    /// (`seattle`). The head office UUID 00000000-0000-0000-0000-000000000000 is head office.
    #[arg(long = "rls-user-id", value_name = "UUID", value_delimiter = ',')]
    pub rls_user_id: Vec<String>,
    /// The caller's role: store_manager (the default), regional_manager (with the stores of --rls-user-id), or
    /// head_office (needs no --rls-user-id).
    #[arg(long, value_enum, default_value = "store-manager")]
    pub role: DevRole,
    /// A scope to add to the defaults (every tool's: sales:read products:read), e.g. pii:read. Repeatable.
    #[arg(long, value_name = "SCOPE")]
    pub scope: Vec<String>,
    /// How long the token stays valid: 90s, 30m, 8h, 2d (at most 30 days).
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// The server the token is for (its resource URI, as `serve` prints it).
    #[arg(long, default_value = "http://127.0.0.1:8000/mcp", value_name = "URL")]
    pub audience: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DevRole {
    StoreManager,
    RegionalManager,
    HeadOffice,
}

fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("`{s}` is not a duration such as 90s, 30m, 8h or 2d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{s}`: the unit must be s, m, h or d")),
    };
    if secs == 0 || secs > 30 * 86_400 {
        return Err(format!("`{s}`: a token lives between 1 second and 30 days"));
    }
    Ok(Duration::from_secs(secs))
}

/// Prints one line: the token.
pub(super) fn token(data_dir: &std::path::Path, args: &TokenArgs) -> Result<()> {
    crate::auth::metadata::ResourceUri::parse(&args.audience).map_err(|e| anyhow::anyhow!("--audience: {e}"))?;
    let ids: Vec<String> = args.rls_user_id.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    let identity = match args.role {
        DevRole::HeadOffice if ids.is_empty() => DevIdentity::HeadOffice,
        DevRole::HeadOffice => bail!("--role head-office takes no --rls-user-id: head office sees every store"),
        _ if ids.is_empty() => bail!("name the stores: --rls-user-id UUID (or a store name such as seattle)"),
        DevRole::RegionalManager => DevIdentity::Region(ids),
        DevRole::StoreManager => {
            let resolved: Result<Vec<String>> = ids
                .iter()
                .map(|id| match crate::data::stores::find_store(id) {
                    Some(store) => Ok(store.manager.to_string()),
                    None if id.parse::<uuid::Uuid>().is_ok() => Ok(id.clone()),
                    None => bail!("`{id}` is neither a store manager UUID nor a store name"),
                })
                .collect();
            DevIdentity::Managers(resolved?)
        }
    };
    let mut scopes = vec![Scope::parse(SALES_READ).expect("valid"), Scope::parse(PRODUCTS_READ).expect("valid")];
    for s in &args.scope {
        scopes.push(Scope::parse(s.trim()).map_err(|e| anyhow::anyhow!("--scope: {e}"))?);
    }
    let key = DevKey::load_or_create(data_dir)?;
    println!("{}", key.mint(&args.audience, &identity, &scopes, args.ttl)?);
    Ok(())
}

#[derive(Debug, Args)]
pub struct ApiKeyArgs {
    /// Who the key is for, as logs and the audit record will name it (e.g. nightly-report).
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// What the key sees: head-office, a store name (seattle) or manager UUIDs, comma-separated.
    #[arg(long = "as", value_name = "TENANT")]
    pub tenant: String,
    /// Scopes the key carries; repeatable. Default: every tool's (sales:read products:read).
    #[arg(long, value_name = "SCOPE")]
    pub scope: Vec<String>,
}

/// Prints the new key (first line, shown only now) and the entry to add to the API keys file.
pub(super) fn api_key(args: &ApiKeyArgs) -> Result<()> {
    let name = args.name.trim();
    if name.is_empty() || name.contains(['"', '\\', '\n']) {
        bail!("--name must be a short label without quotes or backslashes");
    }
    super::parse_tenant(&args.tenant)?;
    let scopes: Vec<String> = if args.scope.is_empty() {
        vec![SALES_READ.into(), PRODUCTS_READ.into()]
    } else {
        args.scope
            .iter()
            .map(|s| Scope::parse(s.trim()).map(|s| s.to_string()))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?
    };
    let (key, id, hash) = crate::auth::api_key::generate()?;
    let scopes: Vec<String> = scopes.iter().map(|s| format!("\"{s}\"")).collect();
    println!("{key}");
    println!();
    println!("# Give the key above to `{name}` (it is shown only now), and add this entry to the API keys file:");
    println!("[[key]]");
    println!("name = \"{name}\"");
    println!("id = \"{id}\"");
    println!("hash = \"{hash}\"");
    println!("identity = \"{}\"", args.tenant.trim().replace('"', ""));
    println!("scopes = [{}]", scopes.join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_read_like_people_write_them() {
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(2 * 86_400)));
        for bad in ["", "h", "10", "5w", "0s", "31d", "-1h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
