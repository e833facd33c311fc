import { ExecArgs } from "@medusajs/framework/types"
import { ContainerRegistrationKeys, Modules } from "@medusajs/framework/utils"
import {
  createRegionsWorkflow,
  createUserAccountWorkflow,
  updateStoresWorkflow,
} from "@medusajs/medusa/core-flows"

// First-start setup, run by the medusa chart's `setup` init container after `db:migrate`:
// `medusa exec ./src/scripts/storefleet-setup.js`. Idempotent: it creates the first region
// and the admin user only when missing, and applies the store's name and default currency
// from values on every start (the fleet repo is their source of truth).
export default async function storefleetSetup({ container }: ExecArgs) {
  const logger = container.resolve(ContainerRegistrationKeys.LOGGER)
  const env = (name: string): string => {
    const v = process.env[name]
    if (!v) {
      throw new Error(`storefleet-setup: environment variable ${name} is not set`)
    }
    return v
  }
  const title = env("STORE_TITLE")
  const currency = env("STORE_CURRENCY").toLowerCase()
  const country = env("STORE_COUNTRY").toLowerCase()
  const regionName = env("STORE_REGION_NAME")

  const storeModule = container.resolve(Modules.STORE)
  const [store] = await storeModule.listStores()
  if (!store) {
    throw new Error("storefleet-setup: no store after migrations (db:migrate creates it)")
  }
  await updateStoresWorkflow(container).run({
    input: {
      selector: { id: store.id },
      update: {
        name: title,
        supported_currencies: [{ currency_code: currency, is_default: true }],
      },
    },
  })
  logger.info(`storefleet-setup: store "${title}", default currency ${currency}`)

  const regionModule = container.resolve(Modules.REGION)
  const regions = await regionModule.listRegions({ name: regionName })
  if (regions.length === 0) {
    await createRegionsWorkflow(container).run({
      input: {
        regions: [{ name: regionName, currency_code: currency, countries: [country] }],
      },
    })
    logger.info(`storefleet-setup: region "${regionName}" (${currency}, ${country}) created`)
  }

  if (process.env.CREATE_ADMIN_USER === "true") {
    const email = env("ADMIN_EMAIL")
    const userModule = container.resolve(Modules.USER)
    const users = await userModule.listUsers({ email })
    if (users.length === 0) {
      const authModule = container.resolve(Modules.AUTH)
      const { authIdentity, error } = await authModule.register("emailpass", {
        body: { email, password: env("ADMIN_PASSWORD") },
      })
      if (error || !authIdentity) {
        throw new Error(`storefleet-setup: admin auth identity: ${error}`)
      }
      await createUserAccountWorkflow(container).run({
        input: { userData: { email }, authIdentityId: authIdentity.id },
      })
      logger.info(`storefleet-setup: admin user ${email} created`)
    }
  }
}
