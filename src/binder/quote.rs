//! Quoting of names and string literals for the statements that cannot take bound parameters
//! (`CREATE USER`, `GRANT`, `CREATE ROLE ... PASSWORD`, ...). Every name and secret that goes
//! into SQL text passes through one of these functions; values are checked, never trusted.
//!
//! Errors name the offending identifier but never a literal's value, which may be a password.

use super::Error;

fn reject_nul(what: &str, value: &str) -> Result<(), Error> {
    if value.contains('\0') {
        return Err(Error::Sql(format!("{what} contains a NUL character")));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::Sql(
            "an empty name cannot be used as an SQL identifier".into(),
        ));
    }
    reject_nul(&format!("name {name:?}"), name)
}

/// A MariaDB identifier in backticks, inner backticks doubled: `` a`b `` -> `` `a``b` ``.
pub fn mariadb_ident(name: &str) -> Result<String, Error> {
    check_name(name)?;
    Ok(format!("`{}`", name.replace('`', "``")))
}

/// A MariaDB string literal with inner quotes doubled. Correct only in a session with
/// `NO_BACKSLASH_ESCAPES`, which [`super::mariadb::open`] sets on every connection: there a
/// backslash is an ordinary character and doubling `'` is the whole escaping.
pub fn mariadb_literal(value: &str) -> Result<String, Error> {
    reject_nul("a string literal", value)?;
    Ok(format!("'{}'", value.replace('\'', "''")))
}

/// The database part of `GRANT ... ON <db>.*`. At database level MariaDB reads `_` and `%` as
/// wildcards (a grant on `app_1` would also cover `appx1`), so they are escaped with `\`.
pub fn mariadb_db_pattern(database: &str) -> Result<String, Error> {
    check_name(database)?;
    mariadb_ident(&mariadb_db_pattern_text(database))
}

/// The text MariaDB stores in `mysql.db.Db` for a grant made with [`mariadb_db_pattern`].
pub fn mariadb_db_pattern_text(database: &str) -> String {
    let mut out = String::with_capacity(database.len() + 4);
    for c in database.chars() {
        if matches!(c, '\\' | '_' | '%') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A MariaDB account `'user'@'host'`.
pub fn mariadb_account(user: &str, host: &str) -> Result<String, Error> {
    check_name(user)?;
    Ok(format!(
        "{}@{}",
        mariadb_literal(user)?,
        mariadb_literal(host)?
    ))
}

/// A PostgreSQL identifier in double quotes, inner quotes doubled. Always quoted, so the name
/// is used exactly as given (no case folding, no keyword clash).
pub fn pg_ident(name: &str) -> Result<String, Error> {
    check_name(name)?;
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// A PostgreSQL string literal, as `quote_literal()` writes it: quotes doubled, and if the
/// value has a backslash, the `E'...'` form with backslashes doubled, which means the same
/// whatever `standard_conforming_strings` is.
pub fn pg_literal(value: &str) -> Result<String, Error> {
    reject_nul("a string literal", value)?;
    let quoted = value.replace('\'', "''");
    if value.contains('\\') {
        Ok(format!("E'{}'", quoted.replace('\\', "\\\\")))
    } else {
        Ok(format!("'{quoted}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Undo a quoting that wraps in `q` and doubles `q`; `None` if a lone `q` sits inside.
    fn unwrap_doubled(quoted: &str, q: char) -> Option<String> {
        let inner = quoted.strip_prefix(q)?.strip_suffix(q)?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == q && chars.next() != Some(q) {
                return None;
            }
            out.push(c);
        }
        Some(out)
    }

    #[test]
    fn known_values() {
        assert_eq!(mariadb_ident("a`b").unwrap(), "`a``b`");
        assert_eq!(mariadb_literal("it's \\ ok").unwrap(), "'it''s \\ ok'");
        assert_eq!(mariadb_db_pattern("a_b%c\\d").unwrap(), "`a\\_b\\%c\\\\d`");
        assert_eq!(mariadb_account("u'x", "%").unwrap(), "'u''x'@'%'");
        assert_eq!(pg_ident("My\"Db").unwrap(), "\"My\"\"Db\"");
        assert_eq!(pg_literal("it's").unwrap(), "'it''s'");
        assert_eq!(pg_literal("a\\'b").unwrap(), "E'a\\\\''b'");
    }

    #[test]
    fn rejects_empty_names_and_nul_without_echoing_literals() {
        assert!(mariadb_ident("").is_err());
        assert!(pg_ident("").is_err());
        let err = pg_literal("secret\0value").unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
        assert!(mariadb_literal("x\0").is_err());
    }

    proptest! {
        #[test]
        fn identifiers_round_trip(name in "[^\\x00]{1,40}") {
            prop_assert_eq!(unwrap_doubled(&mariadb_ident(&name).unwrap(), '`'), Some(name.clone()));
            prop_assert_eq!(unwrap_doubled(&pg_ident(&name).unwrap(), '"'), Some(name));
        }

        #[test]
        fn literals_round_trip(value in "[^\\x00]{0,40}") {
            prop_assert_eq!(unwrap_doubled(&mariadb_literal(&value).unwrap(), '\''), Some(value.clone()));
            let pg = pg_literal(&value).unwrap();
            let decoded = match pg.strip_prefix('E') {
                Some(rest) => unwrap_doubled(rest, '\'').map(|s| s.replace("\\\\", "\\")),
                None => unwrap_doubled(&pg, '\''),
            };
            prop_assert_eq!(decoded, Some(value));
        }
    }
}
