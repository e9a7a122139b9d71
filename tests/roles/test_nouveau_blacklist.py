"""The nouveau blacklist file, rendered by Ansible from the role's template."""

from role_support import ROLES, run_tasks


def test_blacklist_and_modeset_off(tmp_path):
    run = run_tasks(
        tmp_path,
        [
            {
                "name": "Render",
                "ansible.builtin.set_fact": {
                    "rendered": "{{ lookup('ansible.builtin.template', '"
                    + str(ROLES / "nouveau" / "templates" / "blacklist-nouveau.conf.j2")
                    + "') }}"
                },
            }
        ],
        {"render": {}},
        report_vars=("rendered",),
    )
    lines = [
        line for line in run.value("render", "rendered").splitlines() if not line.startswith("#")
    ]
    assert lines == ["blacklist nouveau", "options nouveau modeset=0"]
