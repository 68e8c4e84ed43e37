module github.com/handoff-mta/handoff

go 1.26
