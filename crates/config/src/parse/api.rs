//! `[api]`: the HTTP API's TLS certificate and key, its users file, and the cluster CA
//! the nodes trust in each other's certificates (configuration push), each with its
//! default path.

use crate::model::ApiConfig;
use crate::reader::{Ctx, Entry, Fields};

pub(super) fn read_api(ctx: &mut Ctx<'_>, entry: Option<Entry<'_>>) -> ApiConfig {
    let mut api = ApiConfig {
        tls_cert: "/etc/tandem/tls.crt".into(),
        tls_key: "/etc/tandem/tls.key".into(),
        users_file: "/etc/tandem/users.toml".into(),
        ca_file: "/etc/tandem/ca.crt".into(),
    };
    let Some(table) = entry.and_then(|e| ctx.table(&e)) else { return api };
    let mut fields = Fields::new(table);
    for (key, slot) in [
        ("tls_cert", &mut api.tls_cert),
        ("tls_key", &mut api.tls_key),
        ("users_file", &mut api.users_file),
        ("ca_file", &mut api.ca_file),
    ] {
        if let Some(path) = fields.get(key).and_then(|e| ctx.path(&e)) {
            *slot = path.value;
        }
    }
    fields.finish(ctx, "[api]", &|_| None);
    api
}
