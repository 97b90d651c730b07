//! What reaches AWS is what was built and tested: the template deploys the zip `scripts/build.sh`
//! makes (no `sam build` of another binary), caps the public function's concurrency and protects
//! the table; the deploy workflow pins every action to a full commit SHA, pins the SAM CLI, and its
//! deploy job compiles nothing but deploys the build job's artifact, checked by its SHA-256.
//! (`cfn-lint` and `sam validate --lint` check the template's syntax in scripts/test.sh.)

use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines of one top-level job of a workflow (from `  name:` to the next job).
fn job<'a>(workflow: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("  {name}:");
    let mut lines = workflow.lines().skip_while(|l| *l != header);
    let mut out: Vec<&str> = lines.next().into_iter().collect();
    out.extend(lines.take_while(|l| l.is_empty() || l.starts_with("    ") || l.starts_with('#')));
    assert!(!out.is_empty(), "no job {name}");
    out
}

#[test]
fn the_template_deploys_the_built_zip_with_capped_concurrency_and_a_protected_table() {
    let template = read("template.yaml");
    assert!(
        template.contains("CodeUri: target/lambda/osb-sacloud/bootstrap.zip"),
        "the function's code is not the zip scripts/build.sh makes"
    );
    assert!(
        !template.contains("BuildMethod"),
        "a `sam build` method would build another binary"
    );
    let build = read("scripts/build.sh");
    assert!(build.contains("--no-default-features") && build.contains("bootstrap.zip"));
    for needle in [
        "ReservedConcurrency:\n    Type: Number\n    Default: 10",
        "ReservedConcurrentExecutions: !If",
        "DeletionProtectionEnabled: true",
    ] {
        assert!(template.contains(needle), "template.yaml lacks {needle:?}");
    }
}

#[test]
fn the_workflow_pins_its_actions_and_sam_and_deploys_the_tested_artifact() {
    let workflow = read(".github/workflows/deploy.yml");
    let mut pinned = 0;
    for line in workflow
        .lines()
        .filter(|l| l.trim_start().starts_with("- uses:"))
    {
        let spec = line.trim_start().trim_start_matches("- uses:").trim();
        let (action, rest) = spec
            .split_once('@')
            .unwrap_or_else(|| panic!("unpinned: {line}"));
        let (sha, comment) = rest.split_once(" # ").unwrap_or((rest, ""));
        assert!(
            sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
            "{action} is not pinned to a full commit SHA: {line}"
        );
        assert!(
            comment.starts_with('v'),
            "{action}: no release comment: {line}"
        );
        pinned += 1;
    }
    assert!(pinned >= 10, "only {pinned} actions found");

    let deploy = job(&workflow, "deploy").join("\n");
    for compiles in ["rust-toolchain", "rust-cache", "cargo", "scripts/build.sh"] {
        assert!(
            !deploy.contains(compiles),
            "the deploy job builds ({compiles})"
        );
    }
    for step in [
        "download-artifact",
        "sha256sum --check",
        "LAMBDA_ZIP:",
        "scripts/deploy.sh",
    ] {
        assert!(deploy.contains(step), "the deploy job lacks {step:?}");
    }
    let build = job(&workflow, "build").join("\n");
    assert!(build.contains("scripts/build.sh") && build.contains("upload-artifact"));
    assert!(
        build.contains("zip_sha256"),
        "the build job does not publish the zip's SHA-256"
    );

    let sam = read("scripts/sam-env.sh");
    assert!(
        sam.lines()
            .any(|l| l.starts_with("SAM_CLI_VERSION=\"${SAM_CLI_VERSION:-1.")),
        "the SAM CLI version is not pinned"
    );
    assert!(sam.contains("aws-sam-cli==$SAM_CLI_VERSION"));
    let deploy_script = read("scripts/deploy.sh");
    assert!(
        !deploy_script.contains("sam[@]}\" build"),
        "deploy.sh runs sam build"
    );
    assert!(deploy_script.contains("source scripts/sam-env.sh"));
}
