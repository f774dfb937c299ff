//! The inventory's LSB init scripts: the files of /etc/init.d, each with whether it is
//! executable, whether it has an LSB header (`### BEGIN INIT INFO` ... `### END INIT
//! INFO`) and the header's `Short-Description`. Only the head of each file is read
//! ([`HEAD_BYTES_MAX`]); nothing is run.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use contract::LsbScript;

/// How much of a script is read for its header: LSB headers sit at the top.
pub const HEAD_BYTES_MAX: u64 = 64 * 1024;
/// The most scripts listed.
const SCRIPTS_MAX: usize = 4096;

/// The scripts in `dir`, by name; `Ok(empty)` when the directory does not exist (a host
/// without init scripts), `Err` when it cannot be listed.
pub fn discover(dir: &Path) -> Result<Vec<LsbScript>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
    };
    let mut scripts = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        // Hidden files, README and the like, and directories are not scripts.
        if name.starts_with('.') || !meta.is_file() || scripts.len() >= SCRIPTS_MAX {
            continue;
        }
        let mut head = String::new();
        if let Ok(file) = std::fs::File::open(&path) {
            let mut bytes = Vec::new();
            let _ = file.take(HEAD_BYTES_MAX).read_to_end(&mut bytes);
            head = String::from_utf8_lossy(&bytes).into_owned();
        }
        let (lsb_header, short_description) = header(&head);
        scripts.push(LsbScript {
            name,
            path: path.display().to_string(),
            executable: meta.permissions().mode() & 0o111 != 0,
            lsb_header,
            short_description,
        });
    }
    scripts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(scripts)
}

/// Whether `head` has a complete LSB header, and its `Short-Description`.
pub(super) fn header(head: &str) -> (bool, Option<String>) {
    let mut inside = false;
    let mut short = None;
    for line in head.lines() {
        let line = line.trim_end();
        if line == "### BEGIN INIT INFO" {
            inside = true;
        } else if line == "### END INIT INFO" {
            return (inside, short.filter(|_| inside));
        } else if inside {
            if let Some(text) = line.strip_prefix("# Short-Description:") {
                short = Some(text.trim().to_string()).filter(|t| !t.is_empty());
            }
        }
    }
    (false, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lsb_header_and_its_short_description_are_read() {
        let script = "#!/bin/sh\n### BEGIN INIT INFO\n# Provides:          web\n\
                      # Required-Start:    $network\n# Short-Description: The web server  \n\
                      # Description:       Serves pages\n### END INIT INFO\necho hi\n";
        assert_eq!(header(script), (true, Some("The web server".into())));
        assert_eq!(header("#!/bin/sh\n### BEGIN INIT INFO\n### END INIT INFO\n"), (true, None));
        assert_eq!(header("#!/bin/sh\n# Short-Description: no header\n"), (false, None));
        assert_eq!(header("### BEGIN INIT INFO\n# Short-Description: unended\n"), (false, None));
    }

    #[test]
    fn scripts_are_listed_with_their_headers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("web"),
            "### BEGIN INIT INFO\n# Short-Description: Web\n### END INIT INFO\n",
        )
        .unwrap();
        std::fs::set_permissions(dir.path().join("web"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(dir.path().join("README"), "not a script\n").unwrap();
        std::fs::write(dir.path().join(".hidden"), "").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let scripts = discover(dir.path()).unwrap();
        let names: Vec<&str> = scripts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["README", "web"]);
        assert!(scripts[1].executable && scripts[1].lsb_header);
        assert_eq!(scripts[1].short_description.as_deref(), Some("Web"));
        assert!(!scripts[0].executable && !scripts[0].lsb_header);
        assert!(discover(&dir.path().join("none")).unwrap().is_empty());
    }
}
