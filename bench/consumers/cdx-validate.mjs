// Validates CycloneDX JSON files with the CycloneDX JavaScript library's
// JsonStrictValidator (the specification's JSON schema, strict: no
// additional properties, formats asserted). Usage:
//   node cdx-validate.mjs FILE...
// with @cyclonedx/cyclonedx-library, ajv, ajv-formats and
// ajv-formats-draft2019 installed where node resolves them.
import { readFileSync } from 'node:fs'
import * as CDX from '@cyclonedx/cyclonedx-library'

let failed = false
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, 'utf8')
  const version = JSON.parse(text).specVersion
  const errors = await new CDX.Validation.JsonStrictValidator(version).validate(text)
  if (errors === null) {
    console.log(`${file}: valid CycloneDX ${version}`)
  } else {
    failed = true
    console.log(`${file}: not valid CycloneDX ${version}:\n${JSON.stringify(errors, null, 2)}`)
  }
}
process.exit(failed ? 1 : 0)
