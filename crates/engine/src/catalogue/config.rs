//! Codes 1xxx: the configuration file and host checks made from it.

codes! {
    CONFIG_SYNTAX = "E1001", Error, "configuration is not valid TOML",
        cause: "The file could not be parsed as TOML: a missing quote, bracket or equals sign, or a duplicated table key.",
        fix: "Correct the syntax at the position shown. Strings need double quotes, durations are strings such as \"2s\", and tables are written [name] or [[name]].";
}
