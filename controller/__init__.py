"""The cluster side of Bosun: the `bosun` command and the controller it runs.

The rooms, from the top down (import-linter holds the layers, see pyproject.toml):

    cli/          click commands: parse options, call one operation, print, map errors
    operations/   what operators run, without click: views of status/events/history,
                  the store probe (doctor), enrollment, IAM policy documents
    shell/        the imperative shell of one controller cycle: lease, read reports,
                  load memory and spec, call the planner, sign and publish, records;
                  the daemon that runs cycles on a schedule
    provision/    provisioners the shell hands the planner's requests to (command, ec2-asg)
    status_document   the typed status/cluster.json the shell writes and operators read
    planner/      pure: plan(spec, observed, memory, now) -> Plan; no I/O, no clock
    spec/         pure: the cluster spec's model, validation, revisions and request cost

Everything here imports `wire` (the contract shared with the agent); nothing imports the
agent. Development support (the demo, local S3 servers) lives in `devkit/`, outside the
package.
"""
