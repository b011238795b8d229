"""Every number and matrix of the safety procedure (docs/procedure.md), as the defaults the bot enforces.

Override any key under ``policy:`` in the bot's config YAML (same names, same nesting); keys not listed
here are refused. Python, not YAML, so that ``migrate-bot plan`` reads them without loading a YAML parser:
in a CI pipeline that plans file after file, start-up is most of each plan's time.
"""

from typing import Any

DEFAULTS: dict[str, Any] = {
    "planning": {
        # A migration file larger than this is refused before it is read (20 MB: a 10 MB file plans in
        # seconds, its stored plan is about 200 MB of JSON).
        "max_file_bytes": 20_000_000,
    },
    "complexity": {
        # "Creating indexes on small tables (<1M rows)" is Low, on large tables Medium.
        "large_table_rows": 1_000_000,
        # A migration that changes more tables than this, or several unrelated ones, is "major schema
        # restructuring".
        "restructuring_tables": 3,
        # The guide's complexity matrix: each rule the analysis can apply, and its level.
        "rules": {
            # Low complexity (safe for any time)
            "add_nullable_column": "low",
            "create_table": "low",
            "create_index_small_table": "low",
            "comment": "low",
            "create_view": "low",
            "create_schema": "low",
            "create_type": "low",
            "create_sequence": "low",
            "create_extension": "low",
            "drop_default": "low",
            "drop_not_null": "low",
            "set_default": "low",
            "validate_constraint": "low",
            "add_constraint_not_valid": "low",
            "data_insert": "low",
            "create_function": "low",
            "grant": "low",
            "analyze": "low",
            "table_maintenance_concurrent": "low",
            "read_only": "low",
            "add_enum_value": "low",
            "create_object": "low",
            # Medium complexity (maintenance window recommended)
            "add_not_null_column_with_default": "medium",
            "create_index_large_table": "medium",
            "add_foreign_key": "medium",
            "add_check_constraint": "medium",
            "add_unique_constraint": "medium",
            "set_not_null": "medium",
            "modify_function": "medium",
            "create_trigger": "medium",
            "batch_data_update": "medium",
            "drop_index": "medium",
            "drop_constraint": "medium",
            "drop_view": "medium",
            "drop_function": "medium",
            "rename_index": "medium",
            "rename_constraint": "medium",
            "drop_trigger": "medium",
            "lock_table": "medium",
            "table_maintenance": "medium",
            "alter_table": "medium",
            "attach_partition": "medium",
            "detach_partition": "medium",
            "drop_object": "medium",
            "alter_object": "medium",
            # High complexity (planned maintenance window required)
            "drop_column": "high",
            "rename_column": "high",
            "rename_table": "high",
            "change_column_type": "high",
            "drop_table": "high",
            "truncate_table": "high",
            "add_not_null_column_without_default": "high",
            "major_restructuring": "high",
            "large_data_migration": "high",
            "unrecognised_statement": "medium",
        },
        # Downtime and testing the guide expects at each level, shown on the plan.
        "levels": {
            "low": {
                "risk": "Low",
                "downtime": "None",
                "testing": ["Development", "Staging"],
            },
            "medium": {
                "risk": "Medium",
                "downtime": "0-5 minutes",
                "testing": ["Development", "Staging", "Performance testing"],
            },
            "high": {
                "risk": "High",
                "downtime": "5-60 minutes",
                "testing": ["Development", "Staging", "Load testing", "Rehearsal"],
            },
        },
    },
    # Migration Approval Process: per environment and complexity, who approves and which reviews are recorded.
    "approvals": {
        "development": {
            "low": {
                "approvers": [],
                "reviews": [],
                "documentation": [],
            },
            "medium": {
                "approvers": [],
                "reviews": [],
                "documentation": [],
            },
            "high": {
                "approvers": [],
                "reviews": [],
                "documentation": [],
            },
        },
        "staging": {
            "low": {
                "approvers": ["technical_lead"],
                "reviews": ["peer_review"],
                "documentation": ["migration_plan"],
            },
            "medium": {
                "approvers": ["technical_lead"],
                "reviews": ["peer_review"],
                "documentation": ["migration_plan"],
            },
            "high": {
                "approvers": ["technical_lead"],
                "reviews": ["peer_review"],
                "documentation": ["migration_plan"],
            },
        },
        "production": {
            "low": {
                "approvers": ["technical_lead"],
                "reviews": ["peer_review", "qa"],
                "documentation": ["migration_plan", "rollback_script"],
            },
            "medium": {
                "approvers": ["technical_lead", "product_owner"],
                "reviews": ["peer_review", "qa", "load_testing"],
                "documentation": ["full_migration_playbook"],
            },
            "high": {
                "approvers": ["technical_lead", "product_owner", "cto"],
                "reviews": ["architecture_review", "security_review"],
                "documentation": [
                    "full_migration_playbook",
                    "rehearsal_report",
                    "stakeholder_communication",
                ],
                "rehearsal_required": True,
            },
        },
        # Approvals are bound to the bytes they were given for and expire this long after planning.
        "expire_after_days": 7,
        # Each sign-off by a different person: one member holding two roles still approves only one of them.
        "distinct_approvers": True,
        # Who may record each review; "peer" means any member other than the plan's author.
        "review_roles": {
            "peer_review": "peer",
            "qa": "qa",
            "load_testing": "qa",
            "architecture_review": "architect",
            "security_review": "security",
        },
    },
    # Running the procedure.
    "execution": {
        "lock_timeout": "5s",
        "statement_timeout": "30min",
        # "Performance acceptable (<30s for migration)".
        "max_duration_seconds": 30,
        # Wait this long for application connections to close after maintenance mode.
        "connection_drain_timeout_seconds": 300,
        # A statement that cannot get its lock within lock_timeout is retried this often, waiting longer
        # each time.
        "lock_retries": 3,
        "lock_retry_backoff_seconds": 2,
        # Who may run, abort and roll back a plan: "approvers" are the plan's approver roles; others are
        # role names.
        "runners": ["approvers", "on_call"],
        # Who may freeze an environment (`/migrate freeze`: nothing runs there until it is unfrozen), and
        # lift it.
        "freezers": ["technical_lead", "cto", "on_call"],
        # A scheduled run is announced this long before it starts, in its thread and to stakeholders_channel.
        "schedule_notice_minutes": 60,
        # Runbook commands (maintenance mode) and backups get this long before they count as failed.
        "command_timeout_seconds": 300,
        "backup_timeout_seconds": 3600,
        # An UPDATE alone in its transaction (a data migration) runs in batches of its table's key: each
        # batch its own short transaction, resumable from the last one committed (bench/backfill_bench.py
        # chose the size).
        "backfill": {
            "batch_rows": 10000,
            "pause_seconds": 0.1,
            "max_lock_seconds": 1.0,
        },
        # The Migration Execution Procedure: the standard one, with downtime, and the zero-downtime one.
        "procedures": {
            "standard": [
                "backup",
                "verify_backup",
                "maintenance_on",
                "wait_for_connections",
                "apply",
                "verify",
                "integrity_checks",
                "maintenance_off",
            ],
            "zero_downtime": ["backup", "verify_backup", "apply", "verify", "integrity_checks"],
        },
    },
    # Automatic Rollback Triggers and the post-migration window.
    "monitor": {
        "window_minutes": 60,
        "interval_seconds": 30,
        # "Error rate within normal range (<1%)".
        "normal_error_rate_pct": 1,
        "rollback_triggers": {
            # "Error rate exceeds 5% in first 10 minutes".
            "error_rate_pct": 5,
            "error_rate_window_minutes": 10,
            # "Performance degrades by >50%".
            "latency_degradation_pct": 50,
            "health_check_failures": 1,
        },
        # A rule counts as broken after this many bad samples in a row: one spike does not roll production
        # back.
        "breach_samples": 2,
        # No data is not good data: this many unknown samples in a row and a human is asked (Continue /
        # Roll back).
        "inconclusive_samples": 4,
        "redraw_every_samples": 4,
        # Post-Migration Checklist: reminders after 1 hour, 24 hours and 7 days.
        "reminder_hours": [1, 24, 168],
    },
    # Incident Response: severity levels, fastest response, and when rollback is decided.
    "severities": {
        "P0": {
            "name": "Critical",
            "examples": ["Complete service outage", "Data corruption", "Security breach"],
            "response_minutes": 0,
            "rollback": "automatic",
            "rollback_after_minutes": 0,
        },
        "P1": {
            "name": "High",
            "examples": ["Major feature broken", "Performance degradation >50%", "Error rate >10%"],
            "error_rate_above_pct": 10,
            "latency_degradation_above_pct": 50,
            "response_minutes": 15,
            "rollback": "after_assessment",
            "rollback_after_minutes": 30,
        },
        "P2": {
            "name": "Medium",
            "examples": ["Minor feature broken", "Performance degradation 25-50%", "Error rate 5-10%"],
            "error_rate_above_pct": 5,
            "latency_degradation_above_pct": 25,
            "response_minutes": 60,
            "rollback": "after_assessment",
            "rollback_after_minutes": 120,
        },
        "P3": {
            "name": "Low",
            "examples": ["Cosmetic issues", "Performance degradation <25%", "Error rate <5%"],
            "error_rate_above_pct": 0,
            "latency_degradation_above_pct": 0,
            "response_minutes": None,  # next business day
            "rollback": "not_required",
            "rollback_after_minutes": None,
        },
    },
    # Emergency Escalation: who is paged, and after how long unresolved.
    "escalation": {
        "chain": [
            {"role": "on_call", "after_minutes": 0},
            {"role": "technical_lead", "after_minutes": 15},
            {"role": "cto", "after_minutes": 60},
        ],
        "repeat_ping_minutes": 5,
    },
    # The guide's Pre-Migration Checklist, shown on every plan.
    "checklist": {
        "Development Testing": [
            "Migration tested in local development environment",
            "Unit tests pass for affected database interactions",
            "Integration tests pass",
            "Rollback script generated and tested",
            "Performance impact assessed",
        ],
        "Staging Environment Testing": [
            "Migration applied to staging environment",
            "Application functions correctly after migration",
            "Rollback tested successfully in staging",
            "Data integrity verified post-migration",
            "Performance metrics collected",
        ],
        "Risk Assessment": [
            "Migration complexity assessed (Low/Medium/High)",
            "Breaking changes identified",
            "Affected tables and relationships documented",
            "Downtime requirement estimated",
            "Rollback plan documented",
        ],
        "Communication": [
            "Stakeholders notified of planned migration",
            "Maintenance window scheduled (if needed)",
            "Rollback decision tree prepared",
            "Support team briefed",
        ],
        "Backup & Recovery": [
            "Full database backup completed",
            "Backup integrity verified",
            "Backup restoration tested",
            "Backup retention policy confirmed",
            "Point-in-time recovery (PITR) enabled",
        ],
        "Code Deployment": [
            "Application code compatible with old schema (if zero-downtime)",
            "Application code compatible with new schema",
            "Feature flags configured (if needed)",
            "Deployment order documented",
        ],
    },
    # The guide's Post-Migration Checklist: reminders carry it, with what the bot measured filled in.
    "post_checklist": {
        "Immediate (0-1 hour)": [
            "Application health checks passing",
            "Error rate within normal range (<1%)",
            "Response times within SLA",
            "Database connection pool stable",
            "No deadlocks or lock timeouts",
            "Critical user flows tested manually",
        ],
        "Short-term (1-24 hours)": [
            "Performance metrics compared to baseline",
            "Database size/growth monitored",
            "Query performance analyzed",
            "User-reported issues tracked",
            "Automated tests passing",
            "Backup schedule resumed",
        ],
        "Long-term (1-7 days)": [
            "No regression detected in analytics",
            "Resource utilization stable",
            "Cost impact assessed",
            "Documentation updated",
            "Lessons learned documented",
            "Rollback scripts archived",
        ],
    },
}
