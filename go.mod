module github.com/stepupauth/stepup

go 1.26

require github.com/auth0/go-auth0/v3 v3.0.0 // indirect
