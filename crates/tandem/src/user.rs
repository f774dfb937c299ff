//! `tandem user add NAME --role R`, `tandem user remove NAME`, `tandem user list`: the
//! API's users file (`[api] users_file`; `--users-file` or the configuration's, default
//! /etc/tandem/users.toml). `add` prints the new token once and stores only its argon2id
//! hash; `list` shows names and roles, never tokens. A running node reads the file
//! again when it changes.

use std::path::PathBuf;
use std::process::ExitCode;

use daemon::api::users::{self, Role, User, UsersFile};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: UserCommand,
    /// The users file (default: `[api] users_file` of --config, or /etc/tandem/users.toml).
    #[arg(long, global = true)]
    users_file: Option<PathBuf>,
    /// The configuration whose `[api] users_file` to use.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum UserCommand {
    /// Add a user and print its token (once: only its hash is stored).
    Add {
        name: String,
        /// viewer (read), operator (switchover, drain, clear), admin (also maintenance),
        /// or app (an application's own routes).
        #[arg(long)]
        role: String,
    },
    /// Remove a user (its token stops working within a second on running nodes).
    Remove { name: String },
    /// The users and their roles.
    List,
}

fn users_file(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.users_file {
        return Ok(path.clone());
    }
    if let Some(config) = &args.config {
        let (config, _) = config::load(config).map_err(|invalid| {
            anyhow::anyhow!("the configuration has errors\n{}", invalid.render(false))
        })?;
        return Ok(config.api.users_file);
    }
    Ok(PathBuf::from("/etc/tandem/users.toml"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = users_file(&args)?;
    match args.command {
        UserCommand::Add { name, role } => {
            users::check_name(&name).map_err(anyhow::Error::msg)?;
            let Some(role) = Role::parse(&role) else {
                anyhow::bail!("unknown role `{role}` (viewer, operator, admin or app)");
            };
            let mut file = UsersFile::load_or_empty(&path)?;
            if file.get(&name).is_some() {
                eprintln!(
                    "error: user `{name}` exists in {}; remove it first to give it a new token",
                    path.display()
                );
                return Ok(ExitCode::from(1));
            }
            let token = users::new_token(&name);
            file.users.push(User { name: name.clone(), role, hash: users::hash_token(&token) });
            file.save(&path)?;
            eprintln!(
                "added user {name} (role {role}) to {}; its token, shown only now:",
                path.display()
            );
            println!("{token}");
        }
        UserCommand::Remove { name } => {
            let mut file = UsersFile::load(&path)?;
            let before = file.users.len();
            file.users.retain(|u| u.name != name);
            if file.users.len() == before {
                eprintln!("error: no user `{name}` in {}", path.display());
                return Ok(ExitCode::from(1));
            }
            file.save(&path)?;
            println!("removed user {name} from {}", path.display());
        }
        UserCommand::List => {
            let file = UsersFile::load_or_empty(&path)?;
            for user in &file.users {
                println!("{:<24} {}", user.name, user.role);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
