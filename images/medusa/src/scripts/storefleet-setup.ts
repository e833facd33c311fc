import { ExecArgs } from "@medusajs/framework/types"
import { ContainerRegistrationKeys, Modules } from "@medusajs/framework/utils"
import {
  createApiKeysWorkflow,
  createRegionsWorkflow,
  createSalesChannelsWorkflow,
  createUserAccountWorkflow,
  linkSalesChannelsToApiKeyWorkflow,
  updateStoresWorkflow,
} from "@medusajs/medusa/core-flows"
import { writeFileSync } from "node:fs"

// First-start setup, run by the medusa chart's `setup` init container after `db:migrate`:
// `medusa exec ./src/scripts/storefleet-setup.js`. Idempotent: it creates the first region
// and the admin user only when missing, and applies the store's name and default currency
// from values on every start (the fleet repo is their source of truth). It also makes sure
// the storefront has a publishable API key on the store's default sales channel (Medusa's
// store API answers only requests that carry one) and reports that key — public by
// design — as the container's termination message, where the store's status can read it.
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

  const salesChannelModule = container.resolve(Modules.SALES_CHANNEL)
  let channelId = store.default_sales_channel_id
  if (!channelId) {
    let [channel] = await salesChannelModule.listSalesChannels({ name: "Default Sales Channel" })
    if (!channel) {
      const { result } = await createSalesChannelsWorkflow(container).run({
        input: { salesChannelsData: [{ name: "Default Sales Channel" }] },
      })
      channel = result[0]
    }
    channelId = channel.id
    await updateStoresWorkflow(container).run({
      input: { selector: { id: store.id }, update: { default_sales_channel_id: channelId } },
    })
    logger.info(`storefleet-setup: default sales channel ${channelId}`)
  }

  const keyTitle = "Storefleet storefront"
  const apiKeyModule = container.resolve(Modules.API_KEY)
  let [key] = await apiKeyModule.listApiKeys({ title: keyTitle, type: "publishable" })
  if (!key) {
    const { result } = await createApiKeysWorkflow(container).run({
      input: { api_keys: [{ title: keyTitle, type: "publishable", created_by: "" }] },
    })
    key = result[0]
    logger.info(`storefleet-setup: publishable API key "${keyTitle}" created`)
  }
  const query = container.resolve(ContainerRegistrationKeys.QUERY)
  const { data: keys } = await query.graph({
    entity: "api_key",
    fields: ["id", "sales_channels.id"],
    filters: { id: key.id },
  })
  const linked = (keys[0]?.sales_channels ?? []).some((c: { id: string } | null) => c?.id === channelId)
  if (!linked) {
    await linkSalesChannelsToApiKeyWorkflow(container).run({ input: { id: key.id, add: [channelId] } })
    logger.info(`storefleet-setup: publishable API key linked to sales channel ${channelId}`)
  }
  try {
    writeFileSync("/dev/termination-log", `publishable-api-key: ${key.token}\n`)
  } catch {
    // Outside Kubernetes there is no termination log; the key is in the logs below.
  }
  logger.info(`storefleet-setup: publishable API key ${key.token}`)

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
