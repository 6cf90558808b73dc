//! Passwords for the `dms-cdc` CLI without putting them on the command line:
//! URLs from `DMS_CDC_*_URL`, passwords from `--*-password-file`; a password
//! in an argument is warned about; no message shows a password.

use std::process::{Command, Output};

use dms_cdc::local::{MariaDb, TEST_PASSWORD, TEST_USER};

fn dms_cdc(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dms-cdc"));
    for var in [
        "DMS_CDC_SOURCE_URL",
        "DMS_CDC_TARGET_URL",
        "DMS_CDC_SOURCE_PASSWORD_FILE",
        "DMS_CDC_TARGET_PASSWORD_FILE",
        "DMS_CDC_SOURCE_SSL_MODE",
        "DMS_CDC_SOURCE_SSL_CA",
        "DMS_CDC_TARGET_SSL_MODE",
        "DMS_CDC_TARGET_SSL_CA",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(args).envs(env.iter().copied()).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn passwords_come_from_files_or_the_environment_and_never_show() {
    let db = MariaDb::start(1).unwrap();
    db.run_sql("CREATE DATABASE global").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("target-password");
    std::fs::write(&password_file, format!("{TEST_PASSWORD}\n")).unwrap();
    let password_file = password_file.to_string_lossy().into_owned();
    let without_password = format!("mysql://{TEST_USER}@127.0.0.1:{}/global", db.port());
    let list = ["quarantine", "list", "--function-name", "f"];

    // The password from a file: it connects, and nothing is warned about.
    let out = dms_cdc(
        &[
            &list[..],
            &[
                "--target",
                &without_password,
                "--target-password-file",
                &password_file,
            ],
        ]
        .concat(),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));

    // The URL from the environment, the file from the environment too.
    let out = dms_cdc(
        &list,
        &[
            ("DMS_CDC_TARGET_URL", &without_password),
            ("DMS_CDC_TARGET_PASSWORD_FILE", &password_file),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));

    // A password in an argument works, with a warning that does not repeat it.
    let with_password = db.url("global");
    let out = dms_cdc(&[&list[..], &["--target", &with_password]].concat(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("warning: --target: the URL has a password")
            && text.contains("visible to other users")
            && text.contains("DMS_CDC_TARGET_URL or --target-password-file"),
        "{text}"
    );
    assert!(!text.contains(&format!(":{TEST_PASSWORD}@")), "{text}");

    // A wrong password from a file: the server's refusal, without the password.
    let wrong = "n0t-The-Pa55word";
    std::fs::write(&password_file, wrong).unwrap();
    let out = dms_cdc(
        &list,
        &[
            ("DMS_CDC_TARGET_URL", &without_password),
            ("DMS_CDC_TARGET_PASSWORD_FILE", &password_file),
        ],
    );
    let text = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Access denied for user"), "{text}");
    assert!(!text.contains(wrong), "{text}");

    // A password in the URL and a file: refused, naming neither.
    let out = dms_cdc(
        &[
            &list[..],
            &[
                "--target",
                &with_password,
                "--target-password-file",
                &password_file,
            ],
        ]
        .concat(),
        &[],
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("error: --target-password-file: the URL has a password already"),
        "{text}"
    );
    assert!(!text.contains(wrong) && !text.contains(&format!(":{TEST_PASSWORD}@")));

    // A missing file names the file.
    let out = dms_cdc(
        &list,
        &[
            ("DMS_CDC_TARGET_URL", &without_password),
            ("DMS_CDC_TARGET_PASSWORD_FILE", "/nonexistent/password"),
        ],
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("error: password file /nonexistent/password:"),
        "{text}"
    );

    // Help shows which variables are read, never their values.
    let out = dms_cdc(
        &["quarantine", "list", "--help"],
        &[("DMS_CDC_TARGET_URL", &with_password)],
    );
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[env: DMS_CDC_TARGET_URL]"), "{help}");
    assert!(!help.contains(&format!(":{TEST_PASSWORD}@")), "{help}");
}
