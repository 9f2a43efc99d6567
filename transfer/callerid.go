package transfer

import "github.com/ariflow/ariflow/flows"

// anonymousNumber stands in for a caller number ariflow will not present
// (not a valid E.164 number): the user part of an anonymous SIP identity.
const anonymousNumber = "anonymous"

// CallerIdentity is the caller's own identity as ariflow presents it to a
// third party (an agent, or a transfer that sets no caller ID): the number
// only when it is a valid E.164 number, else "anonymous"; the name only
// when it passes ValidateCallerName, else none.
func CallerIdentity(number, name string) (string, string) {
	if n, err := flows.NormalizeNumber(number, ""); err != nil || n != number {
		number = anonymousNumber
	}
	if flows.ValidateCallerName(name) != nil {
		name = ""
	}
	return number, name
}

// presentedID is the identity an outbound leg shows the far end, in From
// and P-Asserted-Identity and as the leg's connected line for the whole
// call. Both always set explicitly: Asterisk would otherwise fill what is
// left out from the caller (the originator) — the caller's own name next
// to the company's number.
//
//	caller_id_number  caller_id_name  far end sees
//	set               set             name <number>
//	set               unset           no name, <number>
//	unset             set             name <caller's number>
//	unset             unset           caller's name <caller's number>
//
// where the caller's number and name pass CallerIdentity first.
func presentedID(cidNum, cidName, callerNumber, callerName string) (number, name string) {
	switch {
	case cidNum != "":
		return cidNum, cidName
	case cidName != "":
		number, _ = CallerIdentity(callerNumber, "")
		return number, cidName
	default:
		return CallerIdentity(callerNumber, callerName)
	}
}
