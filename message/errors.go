package message

// Error is malformed input: a header block over Options.MaxHeaderBytes, or
// with Options.ExtractRecipients a recipient field (To, Cc, Bcc or their
// Resent- forms) that is not an address list. ParseAddressList returns it
// too. The sendmail front end exits 65 (EX_DATAERR) for it.
//
// Error() is one line, safe to print: input bytes in it are quoted.
type Error struct {
	// Field is the header field concerned as written in the message
	// ("To", "resent-cc"), or "" when the error is not about one field.
	Field string
	// Msg says what is wrong, e.g. `cannot parse address list: unclosed
	// quoted string at offset 4`.
	Msg string
}

// Error returns "Field: Msg", or Msg when Field is empty.
func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Msg
	}
	return e.Msg
}
