//! Word lists the prompt templates draw from. Written for this generator.

pub const NAMES: &[&str] = &[
    "Maria", "Tom", "Aisha", "Kenji", "Olga", "Pedro", "Fatima", "Liam", "Chen", "Amara", "Noah",
    "Sofia", "Ravi", "Elena", "Kwame", "Hannah", "Mateo", "Yuki", "Omar", "Grace", "Lars", "Priya",
    "Diego", "Nadia", "Samuel", "Ingrid", "Tariq", "Lucia", "Ben", "Mei", "Jonas", "Zara", "Felix",
    "Anika", "Hugo", "Leila", "Marco", "Rosa", "Ivan", "Chloe",
];

pub const ITEMS: &[&str] = &[
    "apples",
    "marbles",
    "books",
    "tickets",
    "stickers",
    "pencils",
    "cupcakes",
    "stamps",
    "shells",
    "oranges",
    "coins",
    "postcards",
    "seedlings",
    "jars of jam",
    "notebooks",
    "bottles of water",
    "loaves of bread",
    "candles",
    "tiles",
    "bolts",
];

pub const PLACES: &[&str] = &[
    "bakery",
    "bookshop",
    "warehouse",
    "school fair",
    "farm stand",
    "hardware store",
    "library",
    "flower market",
    "toy shop",
    "cafe",
    "garden centre",
    "bike shop",
];

pub const VEHICLES: &[&str] = &[
    "train",
    "bus",
    "cyclist",
    "delivery van",
    "ferry",
    "runner",
    "truck",
];

pub const CONTAINERS: &[&str] = &["tank", "barrel", "vat", "beaker", "jug", "cistern"];

pub const FIELDS: &[&str] = &[
    "garden",
    "pool",
    "courtyard",
    "football pitch",
    "parking lot",
    "field",
];

pub const CONCEPTS: &[&str] = &[
    "binary search",
    "photosynthesis",
    "compound interest",
    "the greenhouse effect",
    "public-key cryptography",
    "supply and demand",
    "natural selection",
    "the TCP handshake",
    "inflation",
    "plate tectonics",
    "recursion",
    "the water cycle",
    "opportunity cost",
    "vaccination",
    "gradient descent",
    "the Pythagorean theorem",
    "entropy",
    "garbage collection",
    "the electoral college",
    "tidal forces",
    "hash tables",
    "the Doppler effect",
    "osmosis",
    "comparative advantage",
    "dynamic programming",
    "the placebo effect",
    "black holes",
];

pub const LANGS: &[&str] = &[
    "Python",
    "JavaScript",
    "Rust",
    "Go",
    "Java",
    "C",
    "SQL",
    "TypeScript",
];

pub const CODE_TASKS: &[&str] = &[
    "returns the longest palindromic substring of a string",
    "merges overlapping intervals in a list",
    "checks whether a number is prime",
    "finds the k most frequent words in a text",
    "rotates a matrix by 90 degrees",
    "parses a date string and returns the weekday",
    "computes the edit distance between two words",
    "removes duplicates from a sorted array in place",
    "validates a balanced string of brackets",
    "counts the islands in a grid of land and water",
    "converts a Roman numeral to an integer",
    "finds the shortest path in an unweighted graph",
];

pub const CLAIMS: &[&str] = &[
    "the square root of 2 is irrational",
    "there are infinitely many prime numbers",
    "the sum of the first n odd numbers is n squared",
    "every tree with n nodes has n minus 1 edges",
    "the angles of a triangle add up to 180 degrees",
    "a number is divisible by 9 when its digit sum is",
];

pub const PHENOMENA: &[&str] = &[
    "the sky look blue during the day",
    "ice float on water",
    "bread rise when it is baked",
    "a spinning top stay upright",
    "the moon always show the same face to the earth",
    "salt melt ice on roads",
    "a metal spoon feel colder than a wooden one",
    "prices rise after a poor harvest",
];

pub const SUBJECTS: &[&str] = &[
    "high school biology",
    "world history",
    "astronomy",
    "microeconomics",
    "chemistry",
    "computer security",
    "nutrition",
    "philosophy",
    "geography",
    "statistics",
];

pub const CITIES: &[&str] = &[
    "Lisbon",
    "Kyoto",
    "Montreal",
    "Cape Town",
    "Edinburgh",
    "Hanoi",
    "Vienna",
    "Buenos Aires",
    "Oslo",
    "Marrakesh",
    "Seoul",
    "Dublin",
];

pub const INTERESTS: &[&str] = &[
    "museums",
    "hiking",
    "street food",
    "live music",
    "architecture",
    "beaches",
    "markets",
    "cycling",
    "photography",
    "old bookshops",
];

pub const DISHES: &[&str] = &[
    "lasagne",
    "banana bread",
    "vegetable curry",
    "pancakes",
    "chili",
    "risotto",
    "tacos",
    "lentil soup",
    "fried rice",
    "apple crumble",
];

pub const INGREDIENTS: &[&str] = &["eggs", "an oven", "dairy", "gluten", "sugar", "a blender"];

pub const PETS: &[&str] = &["dog", "cat", "rabbit", "parrot", "puppy", "kitten"];

pub const BEHAVIOURS: &[&str] = &[
    "barking at night",
    "scratching the sofa",
    "pulling on the lead",
    "refusing to eat its food",
    "waking me up at five",
];

pub const ISSUES: &[&str] = &[
    "a leaking tap",
    "the broken heating",
    "noise from the flat upstairs",
    "a late deposit refund",
    "mould in the bathroom",
];

pub const ERRORS: &[&str] = &[
    "TypeError: undefined is not a function",
    "IndexError: list index out of range",
    "borrowed value does not live long enough",
    "NullPointerException at line 42",
    "ModuleNotFoundError: No module named requests",
    "segmentation fault (core dumped)",
];

pub const OCCASIONS: &[&str] = &[
    "birthday",
    "retirement",
    "housewarming",
    "anniversary",
    "graduation",
];

pub const RELATIVES: &[&str] = &[
    "sister",
    "dad",
    "grandmother",
    "best friend",
    "colleague",
    "uncle",
];

pub const COMPANY_HEADS: &[&str] = &[
    "Bright", "North", "Blue", "Green", "Silver", "Swift", "Maple", "Harbor", "Cedar", "Nova",
    "Pixel", "Iron", "Sun", "River", "Cloud", "Stone",
];

pub const COMPANY_TAILS: &[&str] = &[
    "wave", "peak", "leaf", "works", "line", "field", "craft", "point", "path", "box", "nest",
    "forge",
];

pub const PRODUCTS: &[&str] = &[
    "running shoes",
    "kitchen knives",
    "phone cases",
    "garden tools",
    "board games",
    "tea",
    "bicycle parts",
    "office chairs",
    "yoga mats",
    "camping gear",
    "skincare",
    "headphones",
];

pub const DOC_TYPES: &[&str] = &[
    "meeting notes",
    "support ticket",
    "news article",
    "incident report",
];

pub const FILLER: &[&str] = &[
    "The team agreed to revisit the schedule next week.",
    "Several customers reported the same problem after the last update.",
    "The budget for the quarter is lower than planned.",
    "A new supplier was suggested for the packaging.",
    "Delivery times improved compared with last month.",
    "Two open questions remain about the contract terms.",
    "The pilot in the northern region went better than expected.",
    "Staff asked for clearer guidance on refunds.",
    "The website was slow during the evening peak.",
    "Marketing wants a decision on the spring campaign by Friday.",
    "The warehouse move is delayed by about ten days.",
    "Feedback on the new onboarding flow is mostly positive.",
];

pub const REVIEW_BITS: &[&str] = &[
    "arrived quickly",
    "stopped working after a week",
    "looks exactly like the photos",
    "is smaller than I expected",
    "was a great gift",
    "feels cheap",
    "does the job",
    "customer service never replied",
    "is worth every penny",
    "had a strange smell at first",
];

pub const COUNTRIES: &[&str] = &[
    "Germany", "Brazil", "Japan", "Canada", "Kenya", "Spain", "India",
];

/// Follow-ups in a chat session (a few ask why: people do too).
pub const FOLLOW_UPS: &[&str] = &[
    "Thanks! Can you make it a bit shorter?",
    "What about doing it on a smaller budget?",
    "Could you add more detail on the second point?",
    "ok, and how long would that take?",
    "hmm, that didn't work for me. any other idea?",
    "Can you rewrite that in a friendlier tone?",
    "Why is that better than the first option?",
    "Great, what should I do first?",
    "Could you turn that into a checklist?",
    "I forgot to mention I only have the weekend. Does that change anything?",
    "can you give me an example?",
    "Perfect, thank you. One more thing: what should I avoid?",
];

pub const ASSISTANT_OPENERS: &[&str] = &[
    "Sure! Here are a few options you could consider:",
    "Good question. The short answer is that it depends on a couple of things.",
    "Happy to help. Here is a simple plan:",
    "Of course. Let me suggest a few ideas:",
];

pub const INTL_OPENERS: &[&str] = &[
    "Kannst du mir helfen, eine Reise nach München für das Wochenende zu planen? Ich mag Museen und gutes Essen.",
    "¿Me puedes dar una receta fácil de tortilla de patatas para cuatro personas?",
    "Peux-tu m'aider à écrire un courriel poli à mon propriétaire à propos du chauffage en panne ?",
    "週末に京都で二日間過ごす予定です。おすすめの観光プランを教えてください。",
    "Wie kann ich meinem Hund beibringen, nicht an der Leine zu ziehen? Er ist zwei Jahre alt.",
    "Qual é a melhor forma de organizar o meu orçamento mensal? Ganho cerca de 2.000 € por mês.",
];

pub const INTL_FOLLOW_UPS: &[&str] = &[
    "Danke! Geht das auch kürzer?",
    "¡Gracias! ¿Y sin horno?",
    "Merci, tu peux le rendre plus court ?",
    "ありがとうございます。予算を抑えるにはどうすればいいですか？",
];
