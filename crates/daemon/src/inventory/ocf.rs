//! The inventory's OCF resource agents: every `PROVIDER/AGENT` under
//! `$OCF_ROOT/resource.d` with the parameters and actions of its `meta-data` (run by
//! `agents::ocf::meta_data`, with `OCF_ROOT` set and a timeout, killed with its process
//! group past it), parsed with quick-xml. Agents are run two at a time and none is
//! started past the inventory's deadline; an agent whose meta-data fails is listed with
//! its reason (W5327), the others are not held up by it.
//!
//! **The cache.** An agent's meta-data depends on its file only, so what a run parsed is
//! kept for the process's life, keyed by the file's path, size and modification time
//! (at most [`CACHE_ENTRIES_MAX`] agents): the first inventory runs every agent, the
//! next ones only the agents that changed. Failures are not kept.

use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use contract::{OcfAction, OcfAgent, OcfParameter};
use engine::catalogue::INVENTORY_META_DATA;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Agents whose meta-data run at once: the machine's other work goes on beside it.
const WORKERS: usize = 2;
/// The most agents listed (a tree with more is not a real OCF root).
const AGENTS_MAX: usize = 4096;
/// The most agents whose parsed meta-data is kept.
pub const CACHE_ENTRIES_MAX: usize = 4096;
/// Below this much time left before the deadline, no agent is started.
const START_MIN: Duration = Duration::from_millis(100);
/// The most agents a problem's message names.
const NAMED_MAX: usize = 5;

/// What identifies one version of an agent's file.
type Stamp = (PathBuf, u64, SystemTime);

/// The parsed meta-data of agents, by file version.
fn cache() -> &'static Mutex<HashMap<Stamp, Parsed>> {
    static CACHE: OnceLock<Mutex<HashMap<Stamp, Parsed>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// What an agent's meta-data says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Parsed {
    pub version: Option<String>,
    pub shortdesc: Option<String>,
    pub longdesc: Option<String>,
    pub parameters: Vec<OcfParameter>,
    pub actions: Vec<OcfAction>,
}

/// Every agent under `root` (its meta-data read within `call_timeout` each and the whole
/// by `deadline`), by provider then name, and the problems: `Err` when `root` cannot be
/// listed at all.
pub fn discover(
    root: &Path,
    call_timeout: Duration,
    deadline: Instant,
) -> Result<(Vec<OcfAgent>, Vec<String>), String> {
    let found = list(root)?;
    let queue: Arc<Mutex<VecDeque<usize>>> = Arc::new(Mutex::new((0..found.len()).collect()));
    let agents: Arc<Vec<Mutex<OcfAgent>>> = Arc::new(found.into_iter().map(Mutex::new).collect());
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (queue, agents, root) = (queue.clone(), agents.clone(), root.to_path_buf());
            std::thread::spawn(move || loop {
                let Some(next) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front() else {
                    return;
                };
                let mut agent = agents[next].lock().unwrap_or_else(|p| p.into_inner());
                describe(&root, &mut agent, call_timeout, deadline);
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    let agents: Vec<OcfAgent> =
        agents.iter().map(|a| a.lock().unwrap_or_else(|p| p.into_inner()).clone()).collect();
    let failed: Vec<String> = agents
        .iter()
        .filter(|a| a.meta_data_error.is_some())
        .map(|a| format!("{}:{}", a.provider, a.name))
        .collect();
    let mut problems = Vec::new();
    if !failed.is_empty() {
        let mut named = failed.iter().take(NAMED_MAX).cloned().collect::<Vec<_>>().join(", ");
        if failed.len() > NAMED_MAX {
            named.push_str(&format!(" and {} more", failed.len() - NAMED_MAX));
        }
        problems.push(format!(
            "the meta-data of {} of {} agents could not be read ({named}); each agent's \
             `meta_data_error` says why",
            failed.len(),
            agents.len()
        ));
    }
    Ok((agents, problems))
}

/// The agents under `root/resource.d`: executable files, not hidden, in a provider's
/// directory; sorted, without meta-data yet.
fn list(root: &Path) -> Result<Vec<OcfAgent>, String> {
    let base = root.join("resource.d");
    let providers = std::fs::read_dir(&base).map_err(|e| {
        format!("cannot list {}: {e} (is resource-agents installed?)", base.display())
    })?;
    let mut agents = Vec::new();
    for provider in providers.flatten() {
        let provider_name = provider.file_name().to_string_lossy().into_owned();
        if provider_name.starts_with('.') || !provider.path().is_dir() {
            continue;
        }
        let Ok(files) = std::fs::read_dir(provider.path()) else { continue };
        for file in files.flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            let path = file.path();
            let executable = std::fs::metadata(&path)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            if name.starts_with('.') || !executable || agents.len() >= AGENTS_MAX {
                continue;
            }
            agents.push(OcfAgent {
                provider: provider_name.clone(),
                name,
                path: path.display().to_string(),
                version: None,
                shortdesc: None,
                longdesc: None,
                parameters: Vec::new(),
                actions: Vec::new(),
                meta_data_error: None,
            });
        }
    }
    agents.sort_by(|a, b| (&a.provider, &a.name).cmp(&(&b.provider, &b.name)));
    Ok(agents)
}

/// Fills in `agent`'s meta-data: from the cache, or by running it if there is time.
fn describe(root: &Path, agent: &mut OcfAgent, call_timeout: Duration, deadline: Instant) {
    let stamp = std::fs::metadata(&agent.path)
        .ok()
        .and_then(|m| Some((PathBuf::from(&agent.path), m.len(), m.modified().ok()?)));
    let cached = stamp
        .as_ref()
        .and_then(|s| cache().lock().unwrap_or_else(|p| p.into_inner()).get(s).cloned());
    let parsed = match cached {
        Some(parsed) => Ok(parsed),
        None => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < START_MIN {
                Err("not run: the inventory's deadline had come".to_string())
            } else {
                agents::ocf::meta_data(root, &agent.provider, &agent.name, call_timeout.min(left))
                    .and_then(|text| parse(&text))
            }
        }
    };
    match parsed {
        Ok(parsed) => {
            if let Some(stamp) = stamp {
                let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() < CACHE_ENTRIES_MAX || cache.contains_key(&stamp) {
                    cache.insert(stamp, parsed.clone());
                }
            }
            agent.version = parsed.version;
            agent.shortdesc = parsed.shortdesc;
            agent.longdesc = parsed.longdesc;
            agent.parameters = parsed.parameters;
            agent.actions = parsed.actions;
        }
        Err(why) => agent.meta_data_error = Some(format!("{}: {why}", INVENTORY_META_DATA.code)),
    }
}

/// Where the parser is: the text it gathers goes to the innermost of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TextOf {
    Shortdesc,
    Longdesc,
}

/// An OCF meta-data document (ra-api-1.dtd) read into what the inventory shows; `Err`
/// when it is not well-formed XML or not a `resource-agent` document.
pub(super) fn parse(text: &str) -> Result<Parsed, String> {
    let mut reader = Reader::from_str(text);
    let mut parsed = Parsed::default();
    let mut saw_root = false;
    let mut parameter: Option<OcfParameter> = None;
    let mut gathering: Option<(TextOf, String)> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("the meta-data is not well-formed XML: {e}"))?;
        match event {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"resource-agent" => {
                saw_root = true;
                // The agent's version; a `<version>` element is the OCF API's.
                parsed.version = attribute(&e, "version");
            }
            Event::Start(e) => {
                let name = e.name().as_ref().to_vec();
                match name.as_slice() {
                    b"shortdesc" => gathering = Some((TextOf::Shortdesc, String::new())),
                    b"longdesc" => gathering = Some((TextOf::Longdesc, String::new())),
                    _ => element(&e, &mut parsed, &mut parameter),
                }
            }
            Event::Empty(e) => {
                element(&e, &mut parsed, &mut parameter);
                // An empty `<parameter/>` ends where it begins.
                if e.name().as_ref() == b"parameter" {
                    parsed.parameters.extend(parameter.take());
                }
            }
            Event::Text(t) => {
                if let Some((_, buffer)) = gathering.as_mut() {
                    buffer.push_str(&t.xml_content().map_err(|e| e.to_string())?);
                }
            }
            Event::CData(t) => {
                if let Some((_, buffer)) = gathering.as_mut() {
                    buffer.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, buffer)) = gathering.as_mut() {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => {
                            let name = r.decode().map_err(|e| e.to_string())?;
                            quick_xml::escape::unescape(&format!("&{name};"))
                                .map_err(|e| e.to_string())?
                                .into_owned()
                        }
                    };
                    buffer.push_str(&resolved);
                }
            }
            Event::End(e) => match e.name().as_ref() {
                b"shortdesc" | b"longdesc" => {
                    if let Some((what, buffer)) = gathering.take() {
                        keep(what, buffer.trim().to_string(), &mut parsed, parameter.as_mut());
                    }
                }
                b"parameter" => parsed.parameters.extend(parameter.take()),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err("the meta-data has no <resource-agent> element".to_string());
    }
    Ok(parsed)
}

/// A description, to the parameter being read or else to the agent; the
/// first of each wins (a document may repeat them in other languages).
fn keep(what: TextOf, text: String, parsed: &mut Parsed, parameter: Option<&mut OcfParameter>) {
    let text = Some(text).filter(|t| !t.is_empty());
    let slot = match (what, parameter) {
        (TextOf::Shortdesc, Some(p)) => &mut p.shortdesc,
        (TextOf::Longdesc, Some(p)) => &mut p.longdesc,
        (TextOf::Shortdesc, None) => &mut parsed.shortdesc,
        (TextOf::Longdesc, None) => &mut parsed.longdesc,
    };
    if slot.is_none() {
        *slot = text;
    }
}

/// An element other than the texts: a parameter begins, its content or an option, an
/// action.
fn element(e: &BytesStart, parsed: &mut Parsed, parameter: &mut Option<OcfParameter>) {
    let flag = |name: &str| attribute(e, name).is_some_and(|v| v == "1" || v == "true");
    match e.name().as_ref() {
        b"parameter" => {
            let finished = parameter.replace(OcfParameter {
                name: attribute(e, "name").unwrap_or_default(),
                required: flag("required"),
                unique: flag("unique"),
                value_type: None,
                default: None,
                shortdesc: None,
                longdesc: None,
                options: Vec::new(),
            });
            // One left open (a document without `</parameter>`) ends here.
            parsed.parameters.extend(finished);
        }
        b"content" => {
            if let Some(p) = parameter.as_mut() {
                p.value_type = attribute(e, "type");
                p.default = attribute(e, "default");
            }
        }
        b"option" => {
            if let (Some(p), Some(value)) = (parameter.as_mut(), attribute(e, "value")) {
                p.options.push(value);
            }
        }
        b"action" => parsed.actions.push(OcfAction {
            name: attribute(e, "name").unwrap_or_default(),
            timeout: attribute(e, "timeout"),
            interval: attribute(e, "interval"),
            depth: attribute(e, "depth"),
        }),
        _ => {}
    }
}

fn attribute(e: &BytesStart, name: &str) -> Option<String> {
    let attribute = e.try_get_attribute(name).ok()??;
    attribute.unescape_value().ok().map(|v| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENT: &str = r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="Thing" version="0.9">
<version>1.1</version>
<longdesc lang="en">
Manages a thing &amp; its <![CDATA[<friends>]]>.
</longdesc>
<shortdesc lang="en">A thing</shortdesc>
<shortdesc lang="de">Ein Ding</shortdesc>
<parameters>
<parameter name="state" unique="1" required="1">
<longdesc lang="en">Where the state is kept.</longdesc>
<shortdesc lang="en">State file</shortdesc>
<content type="string" default="/run/thing.state" />
</parameter>
<parameter name="mode">
<shortdesc lang="en">Mode &#x41;</shortdesc>
<content type="select" default="fast">
<option value="fast" />
<option value="safe" />
</content>
</parameter>
<parameter name="bare"/>
</parameters>
<actions>
<action name="start" timeout="20s" />
<action name="monitor" timeout="20s" interval="10s" depth="0" />
</actions>
</resource-agent>
"#;

    #[test]
    fn a_meta_data_document_gives_parameters_and_actions() {
        let parsed = parse(DOCUMENT).unwrap();
        assert_eq!(parsed.version.as_deref(), Some("0.9"));
        assert_eq!(parsed.shortdesc.as_deref(), Some("A thing"));
        assert_eq!(parsed.longdesc.as_deref(), Some("Manages a thing & its <friends>."));
        let names: Vec<&str> = parsed.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["state", "mode", "bare"]);
        let state = &parsed.parameters[0];
        assert!(state.required && state.unique);
        assert_eq!(state.value_type.as_deref(), Some("string"));
        assert_eq!(state.default.as_deref(), Some("/run/thing.state"));
        assert_eq!(state.shortdesc.as_deref(), Some("State file"));
        assert_eq!(state.longdesc.as_deref(), Some("Where the state is kept."));
        let mode = &parsed.parameters[1];
        assert!(!mode.required && !mode.unique);
        assert_eq!(mode.shortdesc.as_deref(), Some("Mode A"));
        assert_eq!(mode.options, ["fast", "safe"]);
        assert_eq!(parsed.parameters[2].value_type, None);
        assert_eq!(parsed.actions.len(), 2);
        assert_eq!(parsed.actions[1].interval.as_deref(), Some("10s"));
        assert_eq!(parsed.actions[1].depth.as_deref(), Some("0"));
    }

    #[test]
    fn what_is_not_a_meta_data_document_is_refused() {
        assert!(parse("usage: thing {start|stop}").unwrap_err().contains("no <resource-agent>"));
        assert!(parse("<resource-agent><parameters></resource-agent>")
            .unwrap_err()
            .contains("not well-formed"));
        assert!(parse("<resource-agent/>").unwrap().parameters.is_empty());
    }
}
