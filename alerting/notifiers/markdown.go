package notifiers

// markdownTemplate is the default of the robots that take Markdown (WeChat
// Work, DingTalk, Feishu/Lark).
const markdownTemplate = `{{define "title"}}[{{.Status | upper}}{{if .Firing}}:{{len .Firing}}{{end}}]{{range sortedKeys .GroupLabels}} {{index $.GroupLabels .}}{{end}}{{end}}
{{define "message"}}{{range .Alerts}}**{{.Status | upper}}** {{with .Annotations.summary}}{{.}}{{else}}{{.Labels.alertname}}{{end}}{{if .Acknowledged}} (acknowledged){{end}}
> {{pairs .Labels}}
{{with .Annotations.description}}> {{.}}
{{end}}> since {{timeFmt .StartsAt}}{{if eq .Status "resolved"}}, resolved {{timeFmt .EndsAt}}{{end}}

{{end}}{{end}}`
